"""The engine inside serve: fed after store writes, alarms upserted into the real store (SQLite
and PostgreSQL), its state saved, and a restart that replays what was stored since."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pytest

from detectors import Engine, live
from detectors.columns import pack, unpack
from detectors.live import STATE_NAME, LiveDetection
from radmon.config import Settings
from radmon.models import Alarm, Reading
from radmon.store import Store
from tests.detectors.test_engine import network, quiet

N = 4
K = 160  # 26 h 40 min in: after the 24 h warm-up
STATIONS = network(N)


def scenario() -> list[list[Reading]]:
    """1.5 days of 4 stations, one list per time step: a step on ST02 (K..K+40) and a passing
    source on ST03 (K+20)."""
    times, mean, x = quiet(n=N, days=1.5)
    x[K : K + 40, 2] *= 1.3
    x[K + 20, 3] = 3.0 * mean[K + 20, 3]
    return [
        [
            Reading(station_id=s.station_id, time=t.to_pydatetime(), dose_rate_nsv_h=float(v))
            for s, v in zip(STATIONS, row, strict=True)
        ]
        for t, row in zip(times, x, strict=True)
    ]


STEPS = scenario()
CLOCK = STEPS[-1][0].time.timestamp() + 60.0  # the node's now: just after the last reading


def clock() -> float:
    return CLOCK


def reference() -> tuple[Engine, list[Alarm]]:
    """What one uninterrupted engine reports on the whole scenario."""
    engine = Engine(
        Settings().detection, STATIONS, site_timezone=Settings().site.timezone, clock=clock
    )
    changes = []
    for step in STEPS:
        changes += engine.feed(step)
    return engine, changes


REF_ENGINE, REF_CHANGES = reference()


def key(a: Alarm) -> tuple:
    return (a.station_id, a.kind, a.opened_at)


def row(a: Alarm) -> tuple:
    return (
        a.station_id,
        a.kind,
        str(a.category),
        str(a.severity),
        str(a.state),
        a.opened_at,
        a.updated_at,
        a.cleared_at,
        a.peak_nsv_h,
        a.baseline_nsv_h,
        a.details,
    )


def expected_rows(changes: Sequence[Alarm]) -> list[tuple]:
    """Each episode's last report, as the store keeps it."""
    last = {key(a): a for a in changes}
    return sorted(row(a) for a in last.values())


def stored_rows(store: Store) -> list[tuple]:
    alarms = store.alarms("all")
    assert len({key(a) for a in alarms}) == len(alarms), "an episode was stored twice"
    return sorted(row(a) for a in alarms)


def store_all(store: Store, steps: Sequence[list[Reading]]) -> None:
    store.write_readings([r for step in steps for r in step])


def test_reference_scenario_has_the_alarms_the_live_tests_rely_on() -> None:
    kinds = {(a.station_id, a.kind) for a in REF_CHANGES}
    assert kinds == {("ST02", "step"), ("ST03", "transient")}
    assert any(a.cleared_at is not None for a in REF_CHANGES)


@pytest.fixture
def node(store: Store, backend_settings: Settings) -> tuple[Store, Settings]:
    store.upsert_stations(STATIONS)
    return store, backend_settings


def test_fed_readings_become_stored_alarms_after_a_flush(node: tuple[Store, Settings]) -> None:
    store, settings = node
    detection = LiveDetection(store, settings, clock=clock)
    store_all(store, STEPS)
    for step in STEPS:
        detection.feed(step)
    assert store.alarms("all") == []  # nothing is written before the flush

    asyncio.run(detection._flush(asyncio.Event()))
    assert stored_rows(store) == expected_rows(REF_CHANGES)
    assert detection.alarms_recorded == len(REF_CHANGES)
    still_open = {key(a) for a in store.alarms("open")}
    assert still_open == {
        k for k, a in {key(a): a for a in REF_CHANGES}.items() if not a.cleared_at
    }

    asyncio.run(detection._flush(asyncio.Event()))  # nothing pending: nothing written again
    assert detection.alarms_recorded == len(REF_CHANGES)
    assert stored_rows(store) == expected_rows(REF_CHANGES)


def test_run_writes_alarms_and_saves_the_state_when_stopped(
    node: tuple[Store, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, settings = node
    monkeypatch.setattr(live, "FLUSH_S", 0.05)  # flush often: the test need not wait a second
    detection = LiveDetection(store, settings, clock=clock)
    store_all(store, STEPS)

    async def scenario_run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(detection.run(stop))
        for step in STEPS:
            await asyncio.to_thread(detection.feed, step)
        expected = expected_rows(REF_CHANGES)
        deadline = asyncio.get_running_loop().time() + 10.0
        while await asyncio.to_thread(stored_rows, store) != expected:
            assert asyncio.get_running_loop().time() < deadline, "alarms never written"
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, timeout=10.0)

    asyncio.run(scenario_run())
    assert stored_rows(store) == expected_rows(REF_CHANGES)
    saved = store.load_detector_state(STATE_NAME)
    assert saved is not None
    restored = Engine(settings.detection, STATIONS, clock=clock)
    restored.restore(saved[1])
    assert restored.now == REF_ENGINE.now == int(STEPS[-1][0].time.timestamp())
    assert restored.stats == REF_ENGINE.stats


@pytest.mark.parametrize(
    ("save_at", "crash_at"),
    [
        (K + 10, K + 25),  # saved inside the step, crashed after the passing source
        (K + 20, K + 20),  # saved at the passing source, crashed right away
        (K + 45, K + 70),  # saved after the step ended, crashed once it was cleared
    ],
)
def test_restart_replays_stored_readings_and_gives_the_same_alarms(
    node: tuple[Store, Settings], save_at: int, crash_at: int
) -> None:
    store, settings = node
    first = LiveDetection(store, settings, clock=clock)
    for i, step in enumerate(STEPS[: crash_at + 1]):
        store.write_readings(step)
        first.feed(step)
        if i == save_at:
            asyncio.run(first._flush(asyncio.Event()))
            first.save()
    asyncio.run(first._flush(asyncio.Event()))  # reported, but not in the saved state
    store_all(store, STEPS[crash_at + 1 :])  # the node is down; ingest keeps storing

    second = LiveDetection(store, settings, clock=clock)
    replayed = second.warm_up()
    saved_now = STEPS[save_at][0].time.timestamp()
    since = [r for step in STEPS for r in step if r.time.timestamp() > saved_now - 3600]
    assert replayed == len(since)  # from the saved state on (one hour back), not all history
    assert stored_rows(store) == expected_rows(REF_CHANGES)
    assert second.engine.now == REF_ENGINE.now


def test_warm_up_without_state_replays_history(node: tuple[Store, Settings]) -> None:
    store, settings = node
    store_all(store, STEPS)
    detection = LiveDetection(store, settings, clock=clock)
    assert detection.warm_up() == N * len(STEPS)
    assert stored_rows(store) == expected_rows(REF_CHANGES)


def snapshot_meta_changed(**changes: object) -> bytes:
    arrays = unpack(REF_ENGINE.snapshot())
    meta = json.loads(arrays["meta"].tobytes().decode())
    meta.update(changes)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return pack(arrays)


def truncated() -> bytes:
    blob = REF_ENGINE.snapshot()
    return blob[: len(blob) // 2]


def flipped() -> bytes:
    blob = bytearray(REF_ENGINE.snapshot())
    blob[100] ^= 0xFF
    return bytes(blob)


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda: b"this is not a snapshot", id="garbage"),
        pytest.param(lambda: snapshot_meta_changed(version=99), id="other-version"),
        pytest.param(lambda: snapshot_meta_changed(episodes="[[1]]"), id="bad-episodes"),
        pytest.param(truncated, id="truncated"),
        pytest.param(flipped, id="flipped-byte"),
        pytest.param(lambda: b"", id="empty"),
    ],
)
def test_corrupt_saved_state_falls_back_to_history(
    node: tuple[Store, Settings], caplog: pytest.LogCaptureFixture, corrupt
) -> None:
    store, settings = node
    store_all(store, STEPS)
    store.save_detector_state(STATE_NAME, corrupt(), datetime.now(UTC))
    detection = LiveDetection(store, settings, clock=clock)
    with caplog.at_level(logging.ERROR, logger="detectors.live"):
        replayed = detection.warm_up()
    assert "saved detector state unusable" in caplog.text
    assert replayed == N * len(STEPS)  # the whole history, as without a state
    assert stored_rows(store) == expected_rows(REF_CHANGES)
    assert detection.engine.now == REF_ENGINE.now
