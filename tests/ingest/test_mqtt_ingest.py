"""Central MQTT ingest on a real Mosquitto: nothing lost, nothing duplicated, through faults."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from ingest.mqtt import MqttIngest, dose_topic, station_of_topic
from radmon.config import Settings, load_settings
from radmon.models import Station
from radmon.store import Store
from tests.broker import Broker, free_port, prepare_session, publish_all
from tests.conftest import allow_connections

# In the past enough that 30,000 minutes of readings never run into the future-skew check.
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=60)
STATIONS = [
    Station(station_id=f"QN{i:03d}", name=f"Trạm {i}", lat=21.0, lon=107.0) for i in range(5)
]


def _settings(broker: Broker, database_url: str, **ingest: object) -> Settings:
    return load_settings(
        database={"url": database_url},
        mqtt={"host": broker.host, "port": broker.port, "client_id": "radmon-test-central"},
        ingest={"batch_wait_s": 0.05, **ingest},
    )


def _open_store(settings: Settings) -> Store:
    store = Store.open(settings)
    store.upgrade()
    store.upsert_stations(STATIONS)
    return store


def messages(count: int, per_message: int, start: int = 0) -> Iterator[tuple[str, bytes]]:
    """*count* messages of *per_message* readings, round-robin over the stations."""
    for m in range(start, start + count):
        station = STATIONS[m % len(STATIONS)].station_id
        items = [
            {
                "time": (T0 + timedelta(seconds=60 * (m * per_message + k))).isoformat(),
                "dose_rate": 80 + (m + k) % 40,
                "unit": "nSv/h",
            }
            for k in range(per_message)
        ]
        body = items[0] if per_message == 1 else items
        yield f"radmon/v1/{station}/dose", json.dumps(body).encode()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stored(store: Store) -> int:
    stats = store.stats(T0 - timedelta(days=1), T0 + timedelta(days=61))
    return sum(s.count for s in stats)


@contextmanager
def running(ingest: MqttIngest) -> Iterator[None]:
    """Run *ingest* on its own event loop thread for the duration of the block."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    done: list[BaseException | None] = []

    def main() -> None:
        try:
            loop.run_until_complete(ingest.run(stop))
            done.append(None)
        except BaseException as exc:
            done.append(exc)

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        assert not thread.is_alive(), "the ingest did not stop"
        loop.close()
        assert done == [None], done


def test_topics_name_the_station() -> None:
    assert station_of_topic("radmon/v1/QN001/dose", "radmon/v1") == "QN001"
    assert station_of_topic("radmon/v1/a/b/dose", "radmon/v1") is None
    assert station_of_topic("other/QN001/dose", "radmon/v1") is None
    assert station_of_topic("radmon/v1/QN001/status", "radmon/v1") is None


def test_shared_group_subscribes_through_share(tmp_path: Path) -> None:
    settings = load_settings(mqtt={"shared_group": "ingest"})
    assert dose_topic(settings) == "$share/ingest/radmon/v1/+/dose"


def test_round_trip_with_batches_and_garbage(broker: Broker, tmp_path: Path) -> None:
    settings = _settings(broker, f"sqlite:///{tmp_path}/radmon.db")
    store = _open_store(settings)
    prepare_session(settings)
    good = list(messages(50, 1)) + list(messages(10, 100, start=50))
    garbage = [
        ("radmon/v1/QN001/dose", b"{not json"),
        ("radmon/v1/NOPE/dose", b'{"time": 1, "dose_rate": 1, "unit": "nSv/h"}'),
        (
            "radmon/v1/QN002/dose",
            b'{"time": "2026-11-20T00:00:00", "dose_rate": 1, "unit": "nSv/h"}',
        ),
        ("radmon/v1/QN003/dose", b'[{"time": 5, "dose_rate": "NaN", "unit": "nSv/h"}]'),
        # 7 h ahead (local time sent as UTC): refused, and told to the detectors
        (
            "radmon/v1/QN004/dose",
            json.dumps({"time": time.time() + 25200, "dose_rate": 90, "unit": "nSv/h"}).encode(),
        ),
    ]
    ahead: list = []
    ingest = MqttIngest(store, settings, on_ahead=ahead.extend)
    with running(ingest):
        publish_all(broker, good[:30] + garbage + good[30:])
        wait_for(lambda: ingest.counters.messages == len(good) + len(garbage), 30, "all messages")
    assert stored(store) == 50 + 10 * 100
    letters = store.dead_letters()
    assert sorted(d.origin for d in letters) == [
        "radmon/v1/NOPE/dose",
        "radmon/v1/QN001/dose",
        "radmon/v1/QN002/dose",
        "radmon/v1/QN003/dose[0]",
        "radmon/v1/QN004/dose",
    ]
    assert store.dead_letter_counts() == {"mqtt": 5}
    assert ingest.counters.rejected == 5
    assert [(r.station_id, r.dose_rate_nsv_h) for r in ahead] == [("QN004", 90.0)]
    store.close()


POISON = [
    # no UTC for it: astimezone overflows
    b'{"time": "0001-01-01T00:00:00+07:00", "dose_rate": 1, "unit": "nSv/h"}',
    b'{"time": "9999-12-31T23:00:00-05:00", "dose_rate": 1, "unit": "nSv/h"}',
    b"[" * 5000 + b"]" * 5000,  # deeper than the JSON parser's recursion
    # a NUL byte: its dead letter once failed PostgreSQL's text type, and the ingest stopped
    b'{"time": "2026-12-07T18:40:00Z", "dose_rate": 1, "unit": "nSv/h"}\x00',
]


@pytest.mark.postgres
def test_messages_that_once_stopped_the_ingest_are_dead_letters(
    broker: Broker, pg_url: str
) -> None:
    """Each of these, never acknowledged, stopped the ingest for every station on every
    restart. Now each is one dead letter with its reason, and the readings after it land."""
    settings = _settings(broker, pg_url)
    store = _open_store(settings)
    prepare_session(settings)
    good = list(messages(20, 5))
    ingest = MqttIngest(store, settings)
    with running(ingest):
        publish_all(broker, [("radmon/v1/QN001/dose", body) for body in POISON] + good)
        wait_for(lambda: ingest.counters.messages == len(POISON) + len(good), 30, "every message")
    assert stored(store) == 20 * 5
    letters = store.dead_letters()
    assert len(letters) == len(POISON)
    reasons = " | ".join(sorted(letter.reason for letter in letters))
    assert "out of range" in reasons
    assert "nested too deeply" in reasons
    assert any(letter.payload.endswith("\\u0000") for letter in letters), reasons
    store.close()


def test_broker_restart_mid_stream_loses_nothing(broker: Broker, tmp_path: Path) -> None:
    settings = _settings(broker, f"sqlite:///{tmp_path}/radmon.db", receive_maximum=4)
    store = _open_store(settings)
    prepare_session(settings)
    payloads = list(messages(400, 10))
    publish_all(broker, payloads)
    ingest = MqttIngest(store, settings)
    with running(ingest):
        wait_for(lambda: stored(store) >= 200, 30, "the first readings")
        broker.restart()  # the queue for our session is persisted across the restart
        assert stored(store) < 4000, "the stream ended before the restart: no fault was tested"
        wait_for(lambda: stored(store) == 4000, 60, "every reading after the restart")
    assert ingest.counters.connects >= 2
    store.close()


def test_the_inbox_holds_a_window_though_the_broker_sends_more(
    broker: Broker, tmp_path: Path
) -> None:
    """Mosquitto 2.0 lets a whole receive window more through after each PUBACK: the ingest
    bounds its inbox itself (paho's thread waits), so a slow database cannot fill memory."""
    settings = _settings(broker, f"sqlite:///{tmp_path}/radmon.db", receive_maximum=8)
    store = _open_store(settings)
    prepare_session(settings)
    publish_all(broker, list(messages(300, 10)))
    slow, write = threading.Event(), store.add_readings
    writes = []

    def slow_write(batch):  # the first batches go through; then the database is slow
        writes.append(len(batch))
        if len(writes) > 3:
            slow.wait(30)
        return write(batch)

    store.add_readings = slow_write  # type: ignore[method-assign]
    ingest = MqttIngest(store, settings)
    most = 0
    with running(ingest):
        wait_for(lambda: len(writes) > 3, 30, "the slow write")
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            most = max(most, len(ingest._inbox))
            time.sleep(0.01)
        slow.set()
        wait_for(lambda: stored(store) == 3000, 60, "every reading")
    assert 0 < most <= 8
    store.close()


def test_a_batch_holds_about_batch_size_readings_whatever_their_size(
    broker: Broker, tmp_path: Path
) -> None:
    """Batches are measured in payload bytes, at the bytes a reading has taken so far: readings
    with every optional field (some 250 bytes of JSON each) still fill batches of about
    ``batch_size``. A fixed 80 bytes a reading made batches of a third of that, and each
    write's fixed cost then set the pace (docs/benchmarks.md)."""
    settings = _settings(
        broker, f"sqlite:///{tmp_path}/radmon.db", batch_size=1000, batch_wait_s=5.0
    )
    store = _open_store(settings)
    prepare_session(settings)
    rich = {
        "uncertainty": 2.5,
        "counts": 31_416,
        "interval_s": 600,
        "precip_mm_h": 0.0,
        "battery_v": 12.61,
        "temperature_c": 31.5,
        "status": 0,
        "lat": 21.00123,
        "lon": 107.00456,
        "altitude_m": 12.5,
    }
    backlog = [
        (topic, json.dumps([{**item, **rich} for item in json.loads(body)]).encode())
        for topic, body in messages(60, 100)
    ]
    per_reading = sum(len(body) for _, body in backlog) / 6000
    assert per_reading > 200  # the rich items this test is about
    publish_all(broker, backlog)  # a backlog: batches fill by size, not by time
    ingest = MqttIngest(store, settings)
    with running(ingest):
        wait_for(lambda: stored(store) == 6000, 60, "every reading")
    # the first batch is sized by a first guess (150 bytes: 6 messages), then 10 a batch
    assert ingest.counters.batches <= 8, ingest.counters
    store.close()


@pytest.mark.postgres
def test_database_outage_mid_stream_loses_nothing(
    broker: Broker, pg_url: str, pg_admin_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(broker, pg_url, receive_maximum=20)
    store = _open_store(settings)
    prepare_session(settings)
    publish_all(broker, list(messages(600, 10)))

    def allow(flag: bool) -> None:
        allow_connections(pg_admin_url, pg_url, flag)

    ingest = MqttIngest(store, settings)
    try:
        with running(ingest):
            wait_for(lambda: ingest.counters.readings_stored >= 100, 30, "the first readings")
            allow(False)
            time.sleep(3)  # the outage itself: the ingest must hold on and retry
            allow(True)
            wait_for(lambda: stored(store) == 6000, 90, "every reading after the outage")
    finally:
        allow(True)
    assert "write failed; retrying" in caplog.text
    store.close()


def _serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RADMON_CONFIG": str(config)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "radmon", "serve"], env=env, stdout=out, stderr=out
        )


@pytest.mark.postgres
def test_sigkill_under_load_stores_every_reading_exactly_once(
    broker: Broker, pg_url: str, tmp_path: Path
) -> None:
    settings = _settings(broker, pg_url, receive_maximum=100)
    store = _open_store(settings)
    prepare_session(settings)
    config = tmp_path / "radmon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"url": pg_url},
                "mqtt": settings.mqtt.model_dump(),
                "ingest": {"batch_wait_s": 0.05, "receive_maximum": 100},
                "web": {"port": free_port()},
            }
        )
    )
    total = 1500 * 20
    publish_all(broker, list(messages(1500, 20)))
    log = tmp_path / "serve.log"
    node = _serve(config, log)
    try:
        wait_for(lambda: stored(store) >= total // 4, 60, "a quarter of the readings")
        node.send_signal(signal.SIGKILL)
        node.wait(10)
        at_kill = stored(store)
        assert at_kill < total, "everything was stored before the kill: no fault was tested"
        node = _serve(config, log)
        wait_for(lambda: stored(store) >= total, 120, "every reading after the restart")
        node.send_signal(signal.SIGTERM)
        assert node.wait(20) == 0, log.read_text()
    finally:
        if node.poll() is None:
            node.kill()
    with psycopg.connect(pg_url) as conn:
        rows, keys = conn.execute(
            "SELECT count(*), count(DISTINCT (station_id, time)) FROM readings"
        ).fetchone()
    assert rows == keys == total
    assert stored(store) == total  # the rollups count each reading once too
    store.close()


def test_garbage_through_the_broker_all_lands_in_the_dead_letter_store(
    broker: Broker, tmp_path: Path
) -> None:
    settings = _settings(broker, f"sqlite:///{tmp_path}/radmon.db")
    store = _open_store(settings)
    prepare_session(settings)
    rng = random.Random(20261121)
    shapes = [
        lambda i: b"\xff" + i.to_bytes(2) + rng.randbytes(rng.randint(0, 64)),
        lambda i: json.dumps([i, None, {"time": rng.random()}]).encode(),
        lambda i: json.dumps({"time": i, "dose_rate": "high", "unit": "nSv/h"}).encode(),
        lambda i: b'{"time": %d, "dose_rate": 1e400, "unit": "nSv/h"}' % i,
    ]
    garbage = [(f"radmon/v1/QN00{i % 5}/dose", shapes[i % 4](i)) for i in range(200)]
    good = list(messages(5, 1))
    ingest = MqttIngest(store, settings)
    with running(ingest):
        publish_all(broker, garbage + good)
        wait_for(lambda: ingest.counters.messages == 205, 30, "every message")
    assert stored(store) == 5
    # each garbage message is one refusal, except the arrays: one per item
    assert ingest.counters.rejected == sum(3 if i % 4 == 1 else 1 for i in range(200))
    assert sum(store.dead_letter_counts().values()) == ingest.counters.rejected
    store.close()
