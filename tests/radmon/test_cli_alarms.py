"""``radmon alarms|silences|notifications`` as their sub-apps run them, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from alerting import admin
from alerting.outbox import enqueue
from radmon.cli_alarms import alarms_app, notifications_app, silences_app
from radmon.models import Alarm, AlarmState, Category, Severity
from radmon.store import Store

# 10:00 in Hà Nội (site.timezone is Asia/Ho_Chi_Minh by default)
OPENED = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)


@pytest.fixture
def cli(store: Store, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Runs the sub-apps against *store*'s database (either backend)."""
    url = store.engine.url.render_as_string(hide_password=False)
    monkeypatch.delenv("RADMON_CONFIG", raising=False)
    monkeypatch.setenv("RADMON_DATABASE__URL", url)
    return CliRunner()


@pytest.fixture
def alarms(store: Store) -> dict[str, int]:
    """An active threshold alarm at HN-001, an offline one at QN-002, a cleared step."""
    reports = {
        "threshold": Alarm(
            station_id="HN-001",
            kind="threshold",
            category=Category.RADIOLOGICAL,
            severity=Severity.ALERT,
            opened_at=OPENED,
            peak_nsv_h=612.5,
            details={"threshold_nsv_h": 500},
        ),
        "offline": Alarm(
            station_id="QN-002",
            kind="offline",
            category=Category.TECHNICAL,
            severity=Severity.INFO,
            opened_at=OPENED - timedelta(hours=1),
        ),
        "step": Alarm(
            station_id="HN-001",
            kind="step",
            category=Category.RADIOLOGICAL,
            severity=Severity.WARNING,
            state=AlarmState.CLEARED_UNACK,
            opened_at=OPENED - timedelta(hours=5),
            cleared_at=OPENED - timedelta(hours=4),
        ),
    }
    stored = store.record_alarms(list(reports.values()))
    return {name: alarm.id for name, alarm in zip(reports, stored, strict=True)}


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(result: Result, says: str) -> None:
    assert result.exit_code == 2, result.output
    assert says in result.stderr


def events(store: Store, alarm_id: int) -> list[tuple[str, str | None, str | None]]:
    return [(e["event"], e["actor"], e["note"]) for e in store.alarm_history(alarm_id)]


# -- radmon alarms -----------------------------------------------------------------------------


def test_list_is_a_table_in_local_time(cli: CliRunner, alarms: dict[str, int]) -> None:
    lines = ok(cli.invoke(alarms_app, ["list"])).splitlines()
    assert lines[0].split() == [
        "id",
        "station",
        "kind",
        "severity",
        "state",
        "opened",
        "(Asia/Ho_Chi_Minh)",
        "peak",
        "nSv/h",
    ]
    assert lines[1].split() == [
        str(alarms["threshold"]),
        "HN-001",
        "threshold",
        "alert",
        "active_unack",
        "2026-01-10",
        "10:00",
        "612.5",
    ]
    assert lines[2].split()[:3] == [str(alarms["offline"]), "QN-002", "offline"]
    assert lines[2].split()[-1] == "-"  # no peak
    assert len(lines) == 3  # the cleared step is not open
    # the columns line up: each header starts where its cells do
    assert lines[1].index("HN-001") == lines[0].index("station")


def test_list_filters(cli: CliRunner, alarms: dict[str, int]) -> None:
    def ids(*args: str) -> list[str]:
        return [
            line.split()[0] for line in ok(cli.invoke(alarms_app, ["list", *args])).splitlines()[1:]
        ]

    assert ids("--state", "all") == [str(alarms[k]) for k in ("threshold", "offline", "step")]
    assert ids("--state", "all", "--station", "HN-001") == [
        str(alarms["threshold"]),
        str(alarms["step"]),
    ]
    assert ids("--limit", "1") == [str(alarms["threshold"])]
    assert ok(cli.invoke(alarms_app, ["list", "--station", "HP-003"])) == "no open alarms\n"
    refused(cli.invoke(alarms_app, ["list", "--state", "closed"]), "--state")
    refused(cli.invoke(alarms_app, ["list", "--limit", "0"]), "--limit")


def test_ack_records_who_and_keeps_the_first(
    cli: CliRunner, store: Store, alarms: dict[str, int]
) -> None:
    aid = alarms["threshold"]
    before = datetime.now(UTC)
    out = ok(cli.invoke(alarms_app, ["ack", str(aid), "--by", "Lan", "--comment", "on my way"]))
    assert out == f"alarm {aid} acknowledged by Lan (active_ack)\n"
    alarm = store.alarm(aid)
    assert alarm.state is AlarmState.ACTIVE_ACK and alarm.acked_by == "Lan"
    assert before <= alarm.acked_at <= datetime.now(UTC)

    out = ok(cli.invoke(alarms_app, ["ack", str(aid), "--by", "Minh", "--comment", "me too"]))
    assert f"alarm {aid} was already acknowledged by Lan" in out
    assert "comment is kept" in out
    assert store.alarm(aid).acked_by == "Lan" and store.alarm(aid).acked_at == alarm.acked_at
    assert events(store, aid)[1:] == [
        ("acknowledged", "Lan", "on my way"),
        ("comment", "Minh", "me too"),
    ]


def test_clear_then_clear_again(cli: CliRunner, store: Store, alarms: dict[str, int]) -> None:
    aid = alarms["offline"]
    out = ok(cli.invoke(alarms_app, ["clear", str(aid), "--by", "Lan", "--comment", "power back"]))
    assert out == f"alarm {aid} cleared by Lan (cleared_unack)\n"
    cleared = store.alarm(aid)
    assert cleared.state is AlarmState.CLEARED_UNACK and cleared.cleared_by == "Lan"
    assert events(store, aid)[-1] == ("cleared", "Lan", "power back")

    out = ok(cli.invoke(alarms_app, ["clear", str(aid), "--by", "Minh"]))
    assert "was already cleared" in out and "by Lan" in out
    assert store.alarm(aid) == cleared
    assert len(events(store, aid)) == 2
    # cleared by the detectors: the answer says so
    out = ok(cli.invoke(alarms_app, ["clear", str(alarms["step"]), "--by", "Minh"]))
    assert "by the detectors" in out


def test_comment(cli: CliRunner, store: Store, alarms: dict[str, int]) -> None:
    aid = alarms["threshold"]
    out = ok(cli.invoke(alarms_app, ["comment", str(aid), "Đã gọi trạm", "--by", "Lan"]))
    assert out == f"comment added to alarm {aid} by Lan\n"
    assert events(store, aid)[-1] == ("comment", "Lan", "Đã gọi trạm")
    assert store.alarm(aid).state is AlarmState.ACTIVE_UNACK


def test_show_has_the_alarm_and_its_history(
    cli: CliRunner, store: Store, alarms: dict[str, int]
) -> None:
    aid = alarms["threshold"]
    at = datetime(2026, 1, 10, 3, 30, tzinfo=UTC)
    store.acknowledge_alarm(aid, "Lan", at, "on my way")
    out = ok(cli.invoke(alarms_app, ["show", str(aid)]))
    lines = out.splitlines()
    assert lines[0] == f"alarm {aid}"
    fields = dict(line.split(None, 1) for line in lines[1 : lines.index("history (oldest first):")])
    assert fields["station"] == "HN-001"
    assert fields["state"] == "active_ack"
    assert fields["opened"] == "2026-01-10 10:00:00+07:00"
    assert fields["peak"] == "612.5 nSv/h"
    assert fields["acknowledged"] == "2026-01-10 10:30:00+07:00 by Lan"
    assert fields["cleared"] == "-"
    assert fields["details"] == '{"threshold_nsv_h": 500}'
    assert lines[-1] == "  2026-01-10 10:30:00+07:00  acknowledged by Lan: on my way"
    assert "opened" in lines[-2]


@pytest.mark.parametrize(
    "args",
    [
        ["show", "987654"],
        ["ack", "987654", "--by", "Lan"],
        ["clear", "987654", "--by", "Lan"],
        ["comment", "987654", "text", "--by", "Lan"],
    ],
)
def test_an_unknown_alarm_exits_2(cli: CliRunner, alarms: dict[str, int], args: list[str]) -> None:
    refused(cli.invoke(alarms_app, args), "radmon: alarm 987654: no such alarm")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["ack", "0", "--by", "Lan"], "alarm_id"),
        (["ack", "x", "--by", "Lan"], "alarm_id"),
        (["show", str(2**63)], "alarm_id"),
        (["show", str(2**31)], "alarm_id"),  # PostgreSQL's integer column: a traceback there
        (["ack", "3000000000", "--by", "Lan"], "alarm_id"),
        (["ack", "{threshold}"], "--by"),
        (["ack", "{threshold}", "--by", "  "], "--by"),
        (["clear", "{threshold}", "--by", ""], "--by"),
        (["comment", "{threshold}", "  ", "--by", "Lan"], "comment is empty"),
    ],
)
def test_bad_alarm_input_exits_2_naming_the_field(
    cli: CliRunner, store: Store, alarms: dict[str, int], args: list[str], says: str
) -> None:
    args = [a.format(**alarms) for a in args]
    refused(cli.invoke(alarms_app, args), says)
    assert store.alarm(alarms["threshold"]).state is AlarmState.ACTIVE_UNACK
    assert len(store.alarm_history(alarms["threshold"])) == 1


# -- radmon silences ---------------------------------------------------------------------------


def test_silences_add_list_expire(cli: CliRunner, store: Store) -> None:
    before = datetime.now(UTC)
    args = ["add", "--station", "HN-001", "--station", "QN-002", "--kind", "offline"]
    out = ok(cli.invoke(silences_app, [*args, "--hours", "2", "--by", "Lan", "--comment", "swap"]))
    [silence] = admin.silences(store)
    assert out.startswith(f"silence {silence['id']} until ")
    assert "kinds=offline stations=HN-001,QN-002" in out
    assert silence["matchers"] == {"stations": ["HN-001", "QN-002"], "kinds": ["offline"]}
    assert silence["created_by"] == "Lan" and silence["comment"] == "swap"
    hours = timedelta(hours=2)
    assert before + hours <= silence["ends_at"] <= datetime.now(UTC) + hours

    lines = ok(cli.invoke(silences_app, ["list"])).splitlines()
    assert lines[0].split()[:4] == ["id", "from", "(Asia/Ho_Chi_Minh)", "until"]
    assert lines[1].split()[0] == str(silence["id"])
    assert lines[1].endswith("Lan  kinds=offline stations=HN-001,QN-002  swap")

    assert ok(cli.invoke(silences_app, ["expire", str(silence["id"])])) == (
        f"silence {silence['id']} ended\n"
    )
    assert admin.silences(store) == []
    assert ok(cli.invoke(silences_app, ["list"])) == "no silences running\n"
    assert (
        ok(cli.invoke(silences_app, ["list", "--all"]))
        .splitlines()[1]
        .startswith(str(silence["id"]))
    )
    refused(
        cli.invoke(silences_app, ["expire", str(silence["id"])]),
        f"silence {silence['id']}: no such silence running",
    )


def test_a_silence_of_a_group_nobody_defined_is_refused_a_new_station_noted(
    cli: CliRunner, store: Store
) -> None:
    # --group nogroup was taken: a silence that holds back nothing, its author thinking it did
    common = ["--hours", "1", "--by", "Lan", "--comment", "maintenance"]
    refused(cli.invoke(silences_app, ["add", "--group", "nogroup", *common]), "unknown group")
    assert admin.silences(store) == []
    result = cli.invoke(silences_app, ["add", "--station", "QN-NEW", *common])
    assert result.exit_code == 0 and "no station has 'QN-NEW' yet" in result.stderr


def test_until_without_a_zone_is_site_local_time(cli: CliRunner, store: Store) -> None:
    args = ["add", "--severity", "info", "--category", "technical", "--district", "Cầu Giấy"]
    until = ["--until", "2099-01-01T08:00", "--by", "Lan", "--comment", "calibration"]
    out = ok(cli.invoke(silences_app, [*args, *until]))
    assert "until 2099-01-01 08:00" in out
    [silence] = admin.silences(store)
    assert silence["ends_at"] == datetime(2099, 1, 1, 1, 0, tzinfo=UTC)
    assert silence["matchers"] == {
        "severities": ["info"],
        "categories": ["technical"],
        "districts": ["Cầu Giấy"],
    }
    ok(
        cli.invoke(
            silences_app, ["add", "--kind", "offline", *until[:1], "2099-01-01T08:00Z", *until[2:]]
        )
    )
    assert admin.silences(store)[1]["ends_at"] == datetime(2099, 1, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--hours", "1"], "give at least one of"),
        (["--station", "A"], "either --hours or --until"),
        (["--station", "A", "--hours", "1", "--until", "2099-01-01T00:00Z"], "either --hours"),
        (["--station", "A", "--hours", "0"], "--hours"),
        (["--station", "A", "--hours", "1e12"], "--hours"),
        (["--station", "A", "--until", "soon"], "--until"),
        (["--station", "A", "--until", "2020-01-01T00:00Z"], "is not after"),
        (["--severity", "loud", "--hours", "1"], "--severity"),
    ],
)
def test_a_refused_silence_exits_2(
    cli: CliRunner, store: Store, args: list[str], says: str
) -> None:
    refused(cli.invoke(silences_app, ["add", *args, "--by", "Lan", "--comment", "x"]), says)
    assert admin.silences(store, include_ended=True) == []


def test_a_silence_needs_a_comment(cli: CliRunner, store: Store) -> None:
    args = ["add", "--station", "A", "--hours", "1", "--by", "Lan"]
    refused(cli.invoke(silences_app, args), "--comment")
    refused(cli.invoke(silences_app, [*args, "--comment", " "]), "say why")
    assert admin.silences(store, include_ended=True) == []


# -- radmon notifications ----------------------------------------------------------------------


@pytest.fixture
def outbox(store: Store) -> list[int]:
    """A sent and a failed SMS, oldest first."""
    rows = [
        {
            "key": f"k{i}",
            "channel": "sms",
            "address": f"+8491234567{i}",
            "contact": "Lan",
            "kind": "firing",
            "alarm_ids": [i, i + 10],
            "text": f"alarm {i}",
            "state": state,
            "last_error": "gateway said no" if state == "failed" else None,
        }
        for i, state in enumerate(["sent", "failed"], start=1)
    ]
    with store.transaction() as conn:
        enqueue(conn, rows, datetime(2026, 1, 10, 3, 0, tzinfo=UTC))
    return sorted(n.id for n in admin.notifications(store))


def test_notifications_list(cli: CliRunner, outbox: list[int]) -> None:
    lines = ok(cli.invoke(notifications_app, ["list"])).splitlines()
    assert lines[0].split()[:3] == ["id", "created", "(Asia/Ho_Chi_Minh)"]
    sent, failed = outbox
    assert lines[1].split() == [
        str(failed),
        "2026-01-10",
        "10:00",
        "failed",
        "0",
        "sms",
        "Lan",
        "+84912345672",
        "2,12",
        "gateway",
        "said",
        "no",
    ]
    assert lines[2].split()[0] == str(sent)
    assert lines[-1] == "notifications: pending 0, sending 0, sent 1, failed 1, withdrawn 0"
    only = ok(cli.invoke(notifications_app, ["list", "--state", "sent"])).splitlines()
    assert [line.split()[0] for line in only[1:-1]] == [str(sent)]
    refused(cli.invoke(notifications_app, ["list", "--state", "lost"]), "state 'lost'")


def test_an_empty_outbox_still_counts(cli: CliRunner) -> None:
    out = ok(cli.invoke(notifications_app, ["list"]))
    assert out == "notifications: pending 0, sending 0, sent 0, failed 0, withdrawn 0\n"


def test_retry_a_failed_notification(cli: CliRunner, store: Store, outbox: list[int]) -> None:
    sent, failed = outbox
    assert ok(cli.invoke(notifications_app, ["retry", str(failed)])) == (
        f"notification {failed} queued again\n"
    )
    assert {n.id: n.state for n in admin.notifications(store)} == {sent: "sent", failed: "pending"}
    for nid in (failed, sent, 987654):
        refused(
            cli.invoke(notifications_app, ["retry", str(nid)]),
            f"notification {nid}: no failed notification to retry",
        )


def test_a_database_without_the_schema_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RADMON_CONFIG", raising=False)
    monkeypatch.setenv("RADMON_DATABASE__URL", f"sqlite:///{tmp_path}/empty.db")
    for app, args in [
        (alarms_app, ["list"]),
        (silences_app, ["list"]),
        (notifications_app, ["list"]),
    ]:
        refused(CliRunner().invoke(app, args), "radmon db upgrade")
