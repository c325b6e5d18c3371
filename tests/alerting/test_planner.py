"""The planner against a controllable clock: grouping, escalation, inhibition, silences,
rosters, time windows, the route tree. Pure: no store, no network."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerting.planner import LogEntry, LogKey, Planned, Silence, plan
from alerting.rules import Rules
from radmon.config import Settings
from radmon.config_alerting import AlertingSettings, Matcher
from radmon.models import Alarm, AlarmState, Category, Severity, Station

T0 = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)  # 10:00 in Vietnam, a Saturday
SEC = timedelta(seconds=1)
MIN = timedelta(minutes=1)
DUTY, HEAD, LEADER = "+84900000001", "+84900000002", "+84900000003"


def settings(**alerting: Any) -> Settings:
    base: dict[str, Any] = {
        "channels": [{"name": "sms", "type": "sms", "provider": "http", "url": "http://x/send"}],
        "contacts": [
            {"name": "Duty", "phone": DUTY},
            {"name": "Head", "phone": HEAD},
            {"name": "Leader", "phone": LEADER, "email": "leader@example.vn"},
        ],
        "routes": [{"contacts": ["Duty"]}],
    }
    base.update(alerting)
    return Settings(alerting=AlertingSettings.model_validate(base))


def alarm(
    aid: int,
    station: str = "QN01",
    severity: Severity = Severity.ALERT,
    kind: str = "step",
    category: Category = Category.RADIOLOGICAL,
    state: AlarmState = AlarmState.ACTIVE_UNACK,
    at: datetime = T0,
) -> Alarm:
    return Alarm(
        id=aid,
        station_id=station,
        kind=kind,
        category=category,
        severity=severity,
        state=state,
        opened_at=at,
        peak_nsv_h=300.0 + aid,
        baseline_nsv_h=100.0,
    )


STATIONS = {
    f"QN{i:02d}": Station(
        station_id=f"QN{i:02d}",
        name=f"Trạm {i}",
        lat=21.0,
        lon=107.0,
        district="Hạ Long" if i % 2 else "Cẩm Phả",
    )
    for i in range(1, 61)
}


# Duty officer, then the head after 10 minutes, then the leader after 10 more.
THREE_STEPS = [
    {"contacts": ["Duty"]},
    {"after": "10m", "contacts": ["Head"]},
    {"after": "10m", "contacts": ["Leader"]},
]
OFFICE_HOURS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "07:30", "end": "17:00"}]


def office_hours_escalation(**policy: str) -> Settings:
    """THREE_STEPS on a route open in OFFICE_HOURS only."""
    return settings(
        escalations=[{"name": "office", "steps": THREE_STEPS, **policy}],
        routes=[{"escalation": "office", "active_times": OFFICE_HOURS}],
        group_wait="0s",
        group_interval="1m",
    )


class Harness:
    """Runs the planner tick after tick, keeping the log and tracks as the store would."""

    def __init__(self, cfg: Settings) -> None:
        self.rules = Rules(cfg)
        self.tracks: dict[tuple[str, int], datetime] = {}
        self.log: dict[LogKey, LogEntry] = {}
        self.sent: list[tuple[datetime, Planned]] = []
        self.closed: dict[int, Alarm] = {}

    def tick(
        self, alarms: Sequence[Alarm], now: datetime, silences: Sequence[Silence] = ()
    ) -> list[Planned]:
        open_ = [a for a in alarms if a.state.is_open]
        self.closed.update({a.id: a for a in alarms if not a.state.is_open and a.id})
        result = plan(
            self.rules,
            open_alarms=open_,
            closed=self.closed,
            stations=STATIONS,
            silences=silences,
            tracks=self.tracks,
            log=self.log,
            now=now,
        )
        self.tracks.update(result.new_tracks)
        self.log.update(result.log)
        for key in result.forget:
            self.log.pop(key, None)
        self.sent.extend((now, p) for p in result.notifications)
        return result.notifications

    def run(
        self,
        alarms_at: Callable[[datetime], Sequence[Alarm]],
        until: timedelta,
        every: timedelta = SEC,
        silences: Sequence[Silence] = (),
    ) -> None:
        now = T0
        while now <= T0 + until:
            self.tick(alarms_at(now), now, silences)
            now += every

    def to(self, phone: str) -> list[tuple[datetime, Planned]]:
        return [(t, p) for t, p in self.sent if p.recipient.address == phone]


def test_an_emergency_is_sent_at_once_an_alert_waits_for_its_group() -> None:
    h = Harness(settings())
    assert len(h.tick([alarm(1, severity=Severity.EMERGENCY)], T0)) == 1
    h2 = Harness(settings())
    assert h2.tick([alarm(1)], T0) == []
    assert h2.tick([alarm(1)], T0 + 9 * SEC) == []
    [sent] = h2.tick([alarm(1)], T0 + 10 * SEC)
    assert [a.id for a in sent.firing] == [1] and sent.recipient.address == DUTY
    assert h2.tick([alarm(1)], T0 + 11 * SEC) == []  # told once, not every tick


def test_a_rain_front_over_40_stations_makes_one_message_per_interval_not_40() -> None:
    """Warnings open on a new station every 30 s for 20 min (a front crossing the province):
    one message after group_wait, then one per group_interval with the stations added."""
    h = Harness(
        settings(
            routes=[{"contacts": ["Duty", "Head"]}],
            group_wait="30s",
            group_interval="5m",
        )
    )
    opened = {i: T0 + i * 30 * SEC for i in range(40)}

    def alarms_at(now: datetime) -> list[Alarm]:
        return [
            alarm(i + 1, station=f"QN{i + 1:02d}", severity=Severity.WARNING, at=t)
            for i, t in opened.items()
            if t <= now
        ]

    h.run(alarms_at, until=30 * MIN, every=5 * SEC)
    for phone in (DUTY, HEAD):
        sends = h.to(phone)
        # t=30s (first group_wait), then every 5 min while stations keep joining until 19.5 min
        assert [t - T0 for t, _ in sends] == [30 * SEC + k * 5 * MIN for k in range(5)]
        told = {a.id for _, p in sends for a in p.firing}
        assert told == set(range(1, 41))  # nobody's alarm is missed
        assert len(sends[-1][1].firing) == 40  # the last message lists the whole group
    assert len(h.sent) == 10  # 2 contacts x 5, instead of 80 one-alarm messages


def test_escalation_climbs_the_steps_repeats_and_stops_at_the_ack() -> None:
    cfg = settings(
        escalations=[
            {
                "name": "office",
                "steps": THREE_STEPS,
                "repeat_after": "30m",
            }
        ],
        routes=[{"escalation": "office"}],
        group_wait="0s",
        group_interval="1m",
    )
    h = Harness(cfg)
    acked_at = T0 + 75 * MIN

    def alarms_at(now: datetime) -> list[Alarm]:
        state = AlarmState.ACTIVE_ACK if now >= acked_at else AlarmState.ACTIVE_UNACK
        return [alarm(1, state=state)]

    h.run(alarms_at, until=3 * 60 * MIN, every=30 * SEC)
    at = {phone: [t - T0 for t, _ in h.to(phone)] for phone in (DUTY, HEAD, LEADER)}
    # one pass is 20 min of steps + 30 min pause = 50 min; the ack at 75 min ends it all
    assert at[DUTY] == [timedelta(0), 50 * MIN]
    assert at[HEAD] == [10 * MIN, 60 * MIN]
    assert at[LEADER] == [20 * MIN, 70 * MIN]


def test_max_loops_bounds_the_repeats() -> None:
    cfg = settings(
        escalations=[
            {"name": "p", "steps": [{"contacts": ["Duty"]}], "repeat_after": "10m", "max_loops": 2}
        ],
        routes=[{"escalation": "p"}],
        group_wait="0s",
        group_interval="1m",
    )
    h = Harness(cfg)
    h.run(lambda now: [alarm(1)], until=60 * MIN, every=MIN)
    assert [t - T0 for t, _ in h.to(DUTY)] == [timedelta(0), 10 * MIN, 20 * MIN]


def test_repeat_interval_reminds_while_unacknowledged() -> None:
    h = Harness(settings(group_wait="0s", repeat_interval="1h"))
    h.run(lambda now: [alarm(1)], until=150 * MIN, every=MIN)
    assert [t - T0 for t, _ in h.to(DUTY)] == [timedelta(0), 60 * MIN, 120 * MIN]


def test_an_acknowledged_alarm_pages_nobody() -> None:
    h = Harness(settings())
    h.run(lambda now: [alarm(1, state=AlarmState.ACTIVE_ACK)], until=2 * MIN)
    assert h.sent == []


def test_a_severity_rise_is_news_even_inside_the_group_interval() -> None:
    h = Harness(settings(group_wait="0s", group_interval="10m"))
    h.tick([alarm(1, severity=Severity.WARNING)], T0)
    assert h.tick([alarm(1, severity=Severity.ALERT)], T0 + MIN) == []  # waits the interval
    [sent] = h.tick([alarm(1, severity=Severity.EMERGENCY)], T0 + 2 * MIN)  # immediate
    assert sent.firing[0].severity is Severity.EMERGENCY and sent.news == {1}


def test_offline_holds_back_the_same_stations_dose_alarms() -> None:
    h = Harness(settings(group_wait="0s"))
    offline = alarm(1, kind="offline", category=Category.TECHNICAL, severity=Severity.WARNING)
    dose = alarm(2, severity=Severity.ALERT)
    elsewhere = alarm(3, station="QN02")
    sent = h.tick([offline, dose, elsewhere], T0)
    assert sorted(a.id for p in sent for a in p.firing) == [1, 3]


def test_an_emergency_suppresses_the_warning_of_the_same_station() -> None:
    h = Harness(settings(group_wait="0s"))
    emergency = alarm(1, kind="dose_level", severity=Severity.EMERGENCY)
    warning = alarm(2, kind="step", severity=Severity.WARNING)
    other = alarm(3, station="QN02", severity=Severity.WARNING)
    [sent] = h.tick([emergency, warning, other], T0)
    assert sorted(a.id for a in sent.firing) == [1, 3]


def test_a_silence_holds_pages_until_it_ends_then_they_go() -> None:
    h = Harness(settings(group_wait="0s"))
    silence = Silence(1, Matcher(stations=["QN01"]), T0 - MIN, T0 + 30 * MIN)
    h.run(
        lambda now: [alarm(1), alarm(2, station="QN02")],
        until=40 * MIN,
        every=MIN,
        silences=[silence],
    )
    firsts = [(t - T0, sorted(a.id for a in p.firing)) for t, p in h.to(DUTY)]
    assert firsts[0] == (timedelta(0), [2])
    assert (30 * MIN, [1, 2]) in firsts  # the silence ended: QN01 is told, once
    assert sum(1 in ids for _, ids in firsts) == 1


def test_roster_pages_whoever_is_on_duty_at_the_local_handover() -> None:
    cfg = settings(
        rosters=[
            {
                "name": "duty",
                "members": ["Duty", "Head"],
                "handover": "07:30",
                "start": "2026-11-20",
                "overrides": [
                    {"contact": "Leader", "start": "2026-11-23T07:30", "end": "2026-11-24T07:30"}
                ],
            }
        ],
        routes=[{"rosters": ["duty"]}],
        group_wait="0s",
    )
    rules = Rules(cfg)
    local = rules.zone

    def at(day: int, hh: int, mm: int) -> datetime:
        return datetime(2026, 11, day, hh, mm, tzinfo=local)

    assert rules.on_duty("duty", at(20, 8, 0)) == "Duty"
    assert rules.on_duty("duty", at(21, 7, 29)) == "Duty"  # before the handover: yesterday's
    assert rules.on_duty("duty", at(21, 7, 30)) == "Head"
    assert rules.on_duty("duty", at(22, 12, 0)) == "Duty"
    assert rules.on_duty("duty", at(23, 12, 0)) == "Leader"  # stands in
    h = Harness(cfg)
    [sent] = h.tick([alarm(1)], T0)  # 10:00 local on the 21st
    assert sent.recipient.contact == "Head"


def test_active_times_hold_a_route_outside_office_hours() -> None:
    cfg = settings(
        routes=[
            {
                "contacts": ["Duty"],
                "active_times": OFFICE_HOURS,
            }
        ],
        group_wait="0s",
    )
    h = Harness(cfg)  # T0 is a Saturday
    saturday = [alarm(1)]
    assert h.tick(saturday, T0) == []
    monday_morning = T0 + timedelta(days=1, hours=22)  # Monday 08:00 local
    assert len(h.tick(saturday, monday_morning)) == 1


def test_an_alarm_held_overnight_starts_its_escalation_at_the_first_step() -> None:
    # Monday 08:00 paged Duty, Head and Leader at once for Saturday's alarm: its escalation
    # had been counting while the route was closed.
    h = Harness(office_hours_escalation())
    opens = T0 + timedelta(days=1, hours=21, minutes=29)  # Monday 07:29 local: one tick
    h.run(lambda now: [alarm(1)], until=opens - T0, every=30 * MIN)  # before the opening
    assert h.sent == []
    monday = T0 + timedelta(days=1, hours=21, minutes=30)  # Monday 07:30 local
    for minute in range(31):
        h.tick([alarm(1)], monday + minute * MIN)
    at = {phone: [t - monday for t, _ in h.to(phone)] for phone in (DUTY, HEAD, LEADER)}
    assert at == {DUTY: [timedelta(0)], HEAD: [10 * MIN], LEADER: [20 * MIN]}


def test_an_escalation_cut_by_the_window_s_end_resumes_next_morning() -> None:
    # Friday's alarm had paged Duty and Head when the office closed; on Monday at opening
    # Duty, Head and Leader were all paged at once, and Leader again five minutes later.
    h = Harness(office_hours_escalation(repeat_after="30m"))
    friday = T0 - timedelta(hours=17, minutes=15)  # Friday 16:45 local
    monday = T0 + timedelta(days=1, hours=21, minutes=30)  # Monday 07:30 local
    now = friday
    while now <= monday + 40 * MIN:
        h.tick([alarm(1, at=friday)], now)
        now += MIN
    at = {phone: [t - monday for t, _ in h.to(phone) if t >= monday] for phone in (DUTY, HEAD)}
    assert [t - friday for t, _ in h.to(DUTY) if t < monday] == [timedelta(0)]
    assert [t - friday for t, _ in h.to(HEAD) if t < monday] == [10 * MIN]
    # 15 active minutes on Friday: Leader's step (20) comes 5 minutes into Monday, the next
    # round (50) 35 minutes in
    assert [t - monday for t, _ in h.to(LEADER)] == [5 * MIN]
    assert at == {DUTY: [35 * MIN], HEAD: []}


def test_route_tree_first_match_children_and_continue() -> None:
    cfg = settings(
        channels=[
            {"name": "sms", "type": "sms", "provider": "http", "url": "http://x/send"},
            {"name": "mail", "type": "email", "host": "127.0.0.1", "from_address": "r@x.vn"},
            {"name": "hook", "type": "webhook", "url": "http://x/hook"},
        ],
        routes=[
            {"channels": ["hook"], "continue": True},
            {
                "categories": ["radiological"],
                "contacts": ["Duty"],
                "channels": ["sms"],
                "routes": [
                    {
                        "severities": ["emergency"],
                        "contacts": ["Leader"],
                        "channels": ["sms", "mail"],
                    }
                ],
            },
            {"contacts": ["Head"], "channels": ["sms"]},
        ],
        group_wait="0s",
    )
    h = Harness(cfg)
    h.tick([alarm(1, severity=Severity.ALERT)], T0)
    h.tick([alarm(2, station="QN02", severity=Severity.EMERGENCY)], T0 + SEC)
    technical = alarm(3, station="QN03", kind="stuck", category=Category.TECHNICAL)
    h.tick([technical], T0 + 2 * SEC)
    got = sorted(
        (p.recipient.channel, p.recipient.address, a.id) for _, p in h.sent for a in p.firing
    )
    assert got == sorted(
        [
            ("hook", "", 1),
            ("sms", DUTY, 1),
            ("hook", "", 2),
            ("sms", LEADER, 2),
            ("mail", "leader@example.vn", 2),
            ("hook", "", 3),
            ("sms", HEAD, 3),
        ]
    )


def test_send_cleared_tells_the_recipients_once() -> None:
    h = Harness(settings(group_wait="0s", group_interval="1m", send_cleared=True))
    h.tick([alarm(1)], T0)
    cleared = alarm(1, state=AlarmState.CLEARED_UNACK)
    assert h.tick([cleared], T0 + 30 * SEC) == []  # the interval holds it
    [told] = h.tick([cleared], T0 + MIN)
    assert told.firing == [] and [a.id for a in told.cleared] == [1]
    assert h.tick([cleared], T0 + 5 * MIN) == [] and h.log == {}


def test_without_send_cleared_the_log_forgets_closed_alarms() -> None:
    h = Harness(settings(group_wait="0s"))
    h.tick([alarm(1)], T0)
    assert h.log
    h.tick([alarm(1, state=AlarmState.CLEARED_ACK)], T0 + SEC)
    assert h.log == {} and len(h.sent) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"routes": [{"contacts": ["Nobody"]}]}, "alerting.routes[0].contacts[0]: unknown contact"),
        (
            {"routes": [{"contacts": ["Duty"], "channels": ["pager"]}]},
            "alerting.routes[0].channels[0]: unknown channel 'pager'",
        ),
        ({"routes": [{"escalation": "x"}]}, "alerting.routes[0].escalation[0]: unknown escalation"),
        (
            {"routes": [{"routes": [{"rosters": ["night"]}]}]},
            "alerting.routes[0].routes[0].rosters[0]: unknown roster 'night'",
        ),
        # a misspelt label broke every plan; two routes of one name were merged into one
        ({"group_by": ["station"]}, "group_by.0"),
        (
            {"routes": [{"name": "duty", "contacts": ["Duty"]}] * 2},
            "alerting.routes: name 'duty' is given twice",
        ),
    ],
)
def test_a_name_that_resolves_to_nothing_is_refused(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        settings(**change)


def test_a_renamed_channel_does_not_stop_the_planning() -> None:
    # The log still named the old channel: every plan raised KeyError, and nothing was sent.
    h = Harness(settings(group_wait="0s", send_cleared=True))
    h.tick([alarm(1)], T0)
    assert [p.recipient.channel for _, p in h.sent] == ["sms"]
    renamed = settings(
        group_wait="0s",
        send_cleared=True,
        channels=[{"name": "gateway", "type": "sms", "provider": "http", "url": "http://x/send"}],
        routes=[{"contacts": ["Duty"], "channels": ["gateway"]}],
    )
    h.rules = Rules(renamed)
    sent = h.tick([alarm(1), alarm(2, severity=Severity.EMERGENCY)], T0 + MIN)
    assert {p.recipient.channel for p in sent} == {"gateway"}
    assert all(key[2] == "gateway" for key in h.log)


def test_two_contacts_sharing_a_phone_get_one_message() -> None:
    # The duty phone handed over: both contacts carry its number. Two messages went out.
    shared = settings(
        group_wait="0s",
        contacts=[
            {"name": "Duty", "phone": DUTY},
            {"name": "Night duty", "phone": DUTY},
        ],
        routes=[{"contacts": ["Duty", "Night duty"]}],
    )
    h = Harness(shared)
    sent = h.tick([alarm(1), alarm(2)], T0)
    assert [p.recipient.address for p in sent] == [DUTY]
    assert sorted(a.id for a in sent[0].firing) == [1, 2]
    assert h.tick([alarm(1), alarm(2)], T0 + MIN) == []  # and nothing again a minute later
