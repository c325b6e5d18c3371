"""Alerting through the real store and real servers on loopback: the outbox delivers once,
retries with the same key, surfaces permanent failures, survives SIGKILL, pages through every
channel, and takes an SMS reply as an acknowledgement."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerting import AlertingService, admin
from alerting.gateway_double import GatewayDouble
from radmon.config import Settings, load_settings
from radmon.models import Alarm, AlarmState, Category, Severity, Station
from radmon.store import Store
from tests.alerting.modem_sim import ModemSim
from tests.alerting.test_channel_email import LoopbackController

DUTY = "+84901234567"
FAST = {"backoff_initial": "50ms", "backoff_max": "200ms", "poll": "50ms", "lease": "1s"}


@pytest.fixture
def gateway() -> Iterator[GatewayDouble]:
    double = GatewayDouble().start()
    try:
        yield double
    finally:
        double.stop()


def configure(base: Settings, **alerting: Any) -> Settings:
    cfg: dict[str, Any] = {
        "contacts": [{"name": "Duty", "phone": DUTY, "email": "duty@example.vn"}],
        "routes": [{"severities": ["alert", "emergency"], "contacts": ["Duty"]}],
        "dispatch": FAST,
        "group_wait": "0s",
    }
    cfg.update(alerting)
    data = base.model_dump(mode="json", exclude={"alerting"})
    return Settings(**data, alerting=cfg)


def http_channel(gateway: GatewayDouble, **extra: Any) -> dict[str, Any]:
    return {"name": "sms", "type": "sms", "provider": "http", "url": gateway.send_url, **extra}


@pytest.fixture
def ready(store: Store) -> Store:
    store.upsert_stations(
        [
            Station(station_id=f"QN{i:02d}", name=f"Hạ Long {i}", lat=20.9, lon=107.0)
            for i in range(1, 41)
        ]
    )
    return store


def breach(store: Store, station: str = "QN01", severity: Severity = Severity.EMERGENCY) -> Alarm:
    [stored] = store.record_alarms(
        [
            Alarm(
                station_id=station,
                kind="dose_level",
                category=Category.RADIOLOGICAL,
                severity=severity,
                opened_at=datetime.now(UTC),
                peak_nsv_h=150_000.0,
                baseline_nsv_h=95.0,
            )
        ]
    )
    return stored


def first_state(store: Store) -> str | None:
    rows = admin.notifications(store)
    return rows[-1].state if rows else None


async def run_until(service: AlertingService, done: Any, timeout: float = 10.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    deadline = time.monotonic() + timeout
    try:
        while not await asyncio.to_thread(done):
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def paging_into_an_outage(
    store: Store, gateway: GatewayDouble, attempts: int
) -> tuple[AlertingService, Alarm]:
    """A breach paged while the gateway answers 503: returns once the page was tried
    *attempts* times (it waits for its next retry)."""
    gateway.fail(503, times=1000)
    alarm = breach(store)
    service = AlertingService(store, configure(store.settings, channels=[http_channel(gateway)]))

    def tried() -> bool:
        rows = admin.notifications(store)
        return bool(rows) and rows[0].attempts >= attempts

    asyncio.run(run_until(service, tried))
    return service, alarm


def test_a_breach_is_sent_once_with_its_history(ready: Store, gateway: GatewayDouble) -> None:
    settings = configure(ready.settings, channels=[http_channel(gateway)])
    alarm = breach(ready)
    service = AlertingService(ready, settings)
    asyncio.run(run_until(service, lambda: len(gateway.delivered) >= 1))
    [sms] = gateway.delivered
    assert sms["to"] == DUTY and f"OK {alarm.id}" in sms["text"] and "uSv/h" in sms["text"]
    assert "µ" not in sms["text"] and "KHẨN CẤP" in sms["text"]
    assert service.plan_once() == 0  # planning again owes nobody anything
    events = [e["event"] for e in ready.alarm_history(alarm.id)]
    assert events == ["opened", "notified"]
    [row] = admin.notifications(ready)
    assert (row.state, row.attempts, row.provider_id) == ("sent", 1, sms["id"])


def test_transient_failures_retry_with_the_same_key(ready: Store, gateway: GatewayDouble) -> None:
    settings = configure(ready.settings, channels=[http_channel(gateway)])
    gateway.fail(503, times=2)
    breach(ready)
    service = AlertingService(ready, settings)
    asyncio.run(run_until(service, lambda: len(gateway.delivered) >= 1))
    assert len(gateway.delivered) == 1
    keys = {call["body"]["id"] for call in gateway.calls}
    assert len(gateway.calls) == 3 and len(keys) == 1
    [row] = admin.notifications(ready)
    assert (row.state, row.attempts) == ("sent", 3)


def test_a_hanging_gateway_costs_a_timeout_and_never_a_second_sms(
    ready: Store, gateway: GatewayDouble
) -> None:
    settings = configure(ready.settings, channels=[http_channel(gateway, timeout_s=0.3)])
    gateway.hang(1.0)  # answers after the client gave up: it did take the message
    breach(ready)
    service = AlertingService(ready, settings)
    asyncio.run(run_until(service, lambda: first_state(ready) == "sent", timeout=15))
    time.sleep(1.0)
    assert len(gateway.delivered) == 1 and gateway.duplicates >= 1


def test_a_permanent_failure_stops_and_is_surfaced(ready: Store, gateway: GatewayDouble) -> None:
    settings = configure(ready.settings, channels=[http_channel(gateway)])
    gateway.fail(400, times=5)
    alarm = breach(ready)
    service = AlertingService(ready, settings)
    asyncio.run(run_until(service, lambda: admin.notification_counts(ready)["failed"] == 1))
    assert gateway.delivered == [] and len(gateway.calls) == 1
    [row] = admin.notifications(ready, state="failed")
    assert "400" in (row.last_error or "")
    assert [e["event"] for e in ready.alarm_history(alarm.id)][-1] == "notify_failed"
    # fixed by the admin: sent again with the same key
    gateway.recover()
    assert admin.retry_notification(ready, row.id)
    asyncio.run(run_until(service, lambda: len(gateway.delivered) == 1))


def test_a_page_acknowledged_during_an_outage_is_withdrawn(
    ready: Store, gateway: GatewayDouble
) -> None:
    # Pages queued while the gateway was down all went out once it came back, acknowledged
    # alarms' too: the officer's phone rang for what the board had already answered.
    service, alarm = paging_into_an_outage(ready, gateway, attempts=2)
    ready.acknowledge_alarm(alarm.id, "duty officer", datetime.now(UTC))
    gateway.recover()
    asyncio.run(run_until(service, lambda: first_state(ready) == "withdrawn"))
    assert gateway.delivered == []
    assert admin.notification_counts(ready)["withdrawn"] == 1


def test_a_reply_acknowledges_only_alarms_its_phone_was_told_of(
    ready: Store, gateway: GatewayDouble
) -> None:
    # Any contact could acknowledge any alarm by its number, one never paged to them included
    # (a warning the routes send nobody, still unanswered on the board).
    settings = configure(ready.settings, channels=[http_channel(gateway)])
    paged = breach(ready)
    unpaged = breach(ready, "QN02", Severity.WARNING)
    service = AlertingService(ready, settings)
    asyncio.run(run_until(service, lambda: len(gateway.delivered) >= 1))
    asyncio.run(service.on_reply("0901234567", f"OK {paged.id} {unpaged.id}"))
    states = {a.id: a.state for a in (ready.alarm(paged.id), ready.alarm(unpaged.id)) if a}
    assert states == {paged.id: AlarmState.ACTIVE_ACK, unpaged.id: AlarmState.ACTIVE_UNACK}
    asyncio.run(service.on_reply("+84 90 999 9999", f"OK {paged.id}"))  # not a contact
    acked = ready.alarm(paged.id)
    assert acked is not None and acked.acked_by == "Duty"


def test_a_phone_written_two_ways_is_one_phone_for_pages_and_replies(
    ready: Store, gateway: GatewayDouble
) -> None:
    # A as +84…, B as 0…: both pages went out (two SMS to one phone), and B's reply looked
    # for messages sent to A's spelling, found none, and acknowledged nothing
    contacts = [{"name": "A", "phone": DUTY}, {"name": "B", "phone": "0901234567"}]
    both = configure(
        ready.settings,
        channels=[http_channel(gateway)],
        contacts=contacts,
        routes=[{"contacts": ["A", "B"]}],
    )
    first = breach(ready)
    asyncio.run(run_until(AlertingService(ready, both), lambda: len(gateway.delivered) >= 1))
    assert len(gateway.delivered) == 1
    only_b = configure(
        ready.settings,
        channels=[http_channel(gateway)],
        contacts=contacts,
        routes=[{"contacts": ["B"], "stations": ["QN02"]}],
    )
    second = breach(ready, "QN02")
    service = AlertingService(ready, only_b)
    asyncio.run(run_until(service, lambda: len(gateway.delivered) >= 2))
    assert gateway.delivered[-1]["to"] == "0901234567"
    asyncio.run(service.on_reply("+84 90 123 4567", f"OK {second.id}"))
    acked = ready.alarm(second.id)
    assert acked is not None and acked.acked_by == "B"  # whom the message went to, not A
    assert ready.alarm(first.id).state is AlarmState.ACTIVE_UNACK  # type: ignore[union-attr]


def test_a_reply_to_a_page_awaiting_its_retry_acknowledges(
    ready: Store, gateway: GatewayDouble
) -> None:
    # the gateway took the SMS and then answered 503: the page waits for its retry, and the
    # officer's "OK 1" was refused as "never sent to this phone"
    service, alarm = paging_into_an_outage(ready, gateway, attempts=1)
    asyncio.run(service.on_reply("0901234567", f"OK {alarm.id}"))
    acked = ready.alarm(alarm.id)
    assert acked is not None and acked.state is AlarmState.ACTIVE_ACK


def test_a_rain_front_over_40_stations_sends_one_message(
    ready: Store, gateway: GatewayDouble
) -> None:
    now = [datetime.now(UTC)]
    settings = configure(
        ready.settings,
        channels=[http_channel(gateway)],
        routes=[{"contacts": ["Duty"]}],
        group_wait="30s",
    )
    service = AlertingService(ready, settings, clock=lambda: now[0])
    for i in range(40):
        breach(ready, f"QN{i + 1:02d}", Severity.WARNING)
    assert service.plan_once() == 0  # the group waits for company
    now[0] += timedelta(seconds=30)
    assert service.plan_once() == 1
    [row] = admin.notifications(ready)
    assert len(row.alarm_ids) == 40 and "40" in row.text


def _kill_mid_send_script(settings_path: Path, hang: bool) -> str:
    """A dispatcher in its own process, whose channel never returns (so we can kill it)."""
    channel = (
        "build('sms', 'sms', 'http', {'url': URL, 'timeout_s': 60}, 'x')" if hang else "Stuck()"
    )
    return f"""
import asyncio, sys
from alerting.channels import Channel, build
from alerting.dispatcher import Dispatcher
from radmon.config import load_settings
from radmon.store import Store

URL = sys.argv[1]

class Stuck(Channel):
    kind = "sms"
    def __init__(self):
        pass
    async def send(self, message):
        await asyncio.sleep(3600)

settings = load_settings({str(settings_path)!r})
store = Store.open(settings)
dispatcher = Dispatcher(store, {{"sms": {channel}}}, settings.alerting.dispatch)
asyncio.run(dispatcher.run(asyncio.Event(), asyncio.Event()))
"""


@pytest.mark.parametrize("hang", [False, True], ids=["between-claim-and-send", "mid-request"])
def test_sigkill_mid_send_loses_nothing_and_the_phone_gets_one(
    ready: Store, gateway: GatewayDouble, tmp_path: Path, hang: bool
) -> None:
    settings = configure(ready.settings, channels=[http_channel(gateway)])
    path = tmp_path / "radmon.yaml"
    path.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    service = AlertingService(ready, settings)
    breach(ready)
    assert service.plan_once() == 1
    if hang:
        gateway.hang(3.0)  # the request reaches the gateway, which answers after the kill
    child = subprocess.Popen(
        [sys.executable, "-c", _kill_mid_send_script(path, hang), gateway.send_url],
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        deadline = time.monotonic() + 20
        while admin.notifications(ready)[0].state != "sending" or (hang and gateway.requests < 1):
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    [row] = admin.notifications(ready)
    assert row.state == "sending" and row.attempts == 1  # claimed, result never recorded
    time.sleep(1.1)  # the lease runs out
    asyncio.run(run_until(service, lambda: first_state(ready) == "sent"))
    [row] = admin.notifications(ready)
    assert row.attempts == 2
    gateway.wait_for(1, timeout=5)
    time.sleep(0.5 if not hang else 3.0)
    assert len(gateway.delivered) == 1  # the provider's dedup id kept the retry off the phone
    assert {c["body"]["id"] for c in gateway.calls} == {row.key}


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


def test_a_breach_pages_through_every_channel_and_an_sms_reply_acknowledges(
    ready: Store, gateway: GatewayDouble, tmp_path: Path
) -> None:
    inbox = _Inbox()
    smtp = LoopbackController(inbox, hostname="127.0.0.1")
    smtp.start()
    modem = ModemSim(tmp_path).start()
    try:
        settings = configure(
            ready.settings,
            channels=[
                http_channel(gateway),
                {
                    "name": "esms",
                    "type": "sms",
                    "provider": "esms",
                    "api_key": "k",
                    "secret_key": "s",
                    "brandname": "RADMON",
                    "base_url": gateway.esms_base_url,
                },
                {
                    "name": "speedsms",
                    "type": "sms",
                    "provider": "speedsms",
                    "access_token": "t",
                    "url": gateway.speedsms_url,
                },
                {
                    "name": "twilio",
                    "type": "sms",
                    "provider": "twilio",
                    "account_sid": "AC1",
                    "auth_token": "t",
                    "from_number": "+15005550006",
                    "base_url": gateway.twilio_base_url,
                },
                {
                    "name": "modem",
                    "type": "sms",
                    "provider": "modem",
                    "port": modem.port,
                    "poll_s": 0.2,
                    "timeout_s": 5,
                },
                {
                    "name": "mail",
                    "type": "email",
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "starttls": False,
                    "from_address": "radmon@example.vn",
                },
                {"name": "hook", "type": "webhook", "url": gateway.webhook_url, "secret": "s3"},
            ],
        )
        alarm = breach(ready)
        service = AlertingService(ready, settings)

        def everyone_told() -> bool:
            return admin.notification_counts(ready)["sent"] == 7

        async def scenario() -> None:
            stop = asyncio.Event()
            task = asyncio.create_task(service.run(stop))
            try:
                deadline = time.monotonic() + 20
                while not await asyncio.to_thread(everyone_told):
                    assert time.monotonic() < deadline, admin.notifications(ready)
                    await asyncio.sleep(0.1)
                modem.deliver(DUTY.replace("+84", "0"), "ok " + str(alarm.id))
                while (await asyncio.to_thread(ready.alarm, alarm.id)).state is not (
                    AlarmState.ACTIVE_ACK
                ):
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)

        asyncio.run(scenario())
        providers = sorted(d["provider"] for d in gateway.delivered)
        assert providers == ["esms", "http", "speedsms", "twilio", "webhook"]
        assert {m.number for m in modem.sent} == {DUTY}  # one SMS, in concatenated parts
        assert f"OK {alarm.id}" in "".join(m.text for m in modem.sent)
        [mail] = inbox.messages
        assert mail.rcpt_tos == ["duty@example.vn"]
        acked = ready.alarm(alarm.id)
        assert acked is not None and acked.acked_by == "Duty"
        assert ready.alarm_history(alarm.id)[-1]["note"] == f"SMS: ok {alarm.id}"
    finally:
        modem.stop()
        smtp.stop()


def test_an_unknown_provider_key_stops_start_up_with_the_key(tmp_path: Path) -> None:
    from radmon.errors import InputError

    settings = load_settings(
        database={"url": f"sqlite:///{tmp_path}/x.db"},
    )
    bad = configure(settings, channels=[{"name": "sms", "type": "sms", "provider": "http"}])
    with pytest.raises(InputError, match=r"alerting\.channels\[0\]\.url"):
        AlertingService(Store.open(bad), bad)
    worse = configure(
        settings, channels=[{"name": "sms", "type": "sms", "provider": "pigeon", "url": "x"}]
    )
    with pytest.raises(InputError, match=r"alerting\.channels\[0\]: unknown channel type"):
        AlertingService(Store.open(worse), worse)


def test_serve_refuses_a_route_to_an_unknown_contact_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"url": f"sqlite:///{tmp_path}/x.db"},
                "alerting": {
                    "channels": [
                        {"name": "sms", "type": "sms", "provider": "http", "url": "http://x/"}
                    ],
                    "contacts": [{"name": "Duty", "phone": DUTY}],
                    "routes": [{"contacts": ["Duty officer"], "channels": ["sms"]}],
                },
            }
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "radmon", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("RADMON_")},
    )
    assert done.returncode == 2
    assert "alerting.routes[0].contacts[0]: unknown contact 'Duty officer'" in done.stderr


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("OK 5", [5]),
        ("ok #5, 7", [5, 7]),
        ("OK", []),
        # an id no alarm can have once failed the store on every poll, and the reply stayed
        ("OK 5 99999999999999999999", [5]),
        ("OK 99999999999999999999", None),
        ("OK 0", None),
        ("hello", None),
        ("OK 5 - thanks", None),
        ("OK1", None),
        # backtracked exponentially (seconds at 26 digits) with alerting waiting on it
        ("OK " + "1" * 200 + " thanks", None),
        ("OK " + "1" * 200 + "x", None),
        ("OK " + "5 " * 600, None),  # past MAX_REPLY_CHARS
    ],
)
def test_replies_name_only_ids_an_alarm_can_have(text: str, ids: list[int] | None) -> None:
    from alerting.service import parse_reply

    assert parse_reply(text) == ids
