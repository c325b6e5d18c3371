"""The engine inside serve: fed after store writes, alarms upserted into the real store (SQLite
and PostgreSQL), its state saved, and a restart that replays what was stored since."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
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
    detection.judge_gathered()  # what the worker would have done
    assert detection.engine.stats["readings"] == N * len(STEPS)
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
    first.judge_gathered()
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


# -- gathering: wider engine feeds, each reading judged once ------------------------------------


def keys(readings: Sequence) -> list[tuple[str, datetime]]:
    return [(r.station_id, r.time) for r in readings]


class FeedSpy:
    """Wraps the engine's feed: what each call judged (as keys: the engine is given the
    fields it reads, not the readings themselves)."""

    def __init__(self, engine: Engine, hold: threading.Event | None = None) -> None:
        self.calls: list[list[tuple[str, datetime]]] = []
        self.hold = hold
        self._feed = engine.feed
        engine.feed = self  # type: ignore[method-assign]

    def __call__(self, readings: Sequence[Reading]) -> list[Alarm]:
        if self.hold is not None:
            assert self.hold.wait(10.0), "the test never let the engine go on"
        self.calls.append(keys(readings))
        return self._feed(readings)

    def judged(self) -> list[tuple[str, datetime]]:
        return [r for call in self.calls for r in call]


def wait_until(condition, timeout: float = 10.0) -> float:
    """Seconds until *condition()* holds (fails after *timeout*)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "never happened"
        time.sleep(0.005)
    return time.monotonic() - started


def test_two_feeds_within_the_bound_are_judged_in_one_engine_feed(
    node: tuple[Store, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, settings = node
    monkeypatch.setattr(live, "GATHER_S", 1.0)
    detection = LiveDetection(store, settings, clock=clock)
    spy = FeedSpy(detection.engine)
    store_all(store, STEPS)
    half = len(STEPS) // 2
    first = [r for step in STEPS[:half] for r in step]
    second = [r for step in STEPS[half:] for r in step]
    detection.start()
    try:
        detection.feed(first)
        detection.feed(second)
        assert spy.calls == []  # gathered, not judged: the bound has not passed
        wait_until(lambda: len(spy.calls) == 1)
    finally:
        detection.stop()
    assert spy.calls == [keys(first + second)]  # one engine feed of both, in hand-over order
    asyncio.run(detection._flush(asyncio.Event()))
    assert stored_rows(store) == expected_rows(REF_CHANGES)  # as fed in one call
    assert detection.engine.stats == REF_ENGINE.stats


def test_the_bound_is_honoured(
    node: tuple[Store, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, settings = node
    monkeypatch.setattr(live, "GATHER_S", 0.3)
    detection = LiveDetection(store, settings, clock=clock)
    spy = FeedSpy(detection.engine)
    detection.start()
    try:
        for step in STEPS[:3]:
            handed = time.monotonic()
            detection.feed(step)
            wait_until(lambda step=step: bool(spy.calls) and spy.calls[-1] == keys(step))
            waited = time.monotonic() - handed
            assert 0.29 <= waited <= 1.5, waited  # not before the bound, soon after it
    finally:
        detection.stop()
    assert len(spy.calls) == 3


def test_a_full_gathering_is_judged_without_waiting_for_the_bound(
    node: tuple[Store, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, settings = node
    monkeypatch.setattr(live, "GATHER_S", 30.0)
    monkeypatch.setattr(live, "GATHER_READINGS", 3 * N)
    detection = LiveDetection(store, settings, clock=clock)
    spy = FeedSpy(detection.engine)
    detection.start()
    try:
        for step in STEPS[:3]:
            detection.feed(step)
        assert wait_until(lambda: len(spy.judged()) == 3 * N) < 5.0
    finally:
        detection.stop()
    assert spy.calls == [keys(STEPS[0] + STEPS[1] + STEPS[2])]


def test_each_reading_is_judged_exactly_once_whoever_feeds_and_judges(
    node: tuple[Store, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, settings = node
    monkeypatch.setattr(live, "GATHER_S", 0.01)
    monkeypatch.setattr(live, "GATHER_READINGS", 7 * N)
    monkeypatch.setattr(live, "MAX_GATHERED", 9 * N)
    detection = LiveDetection(store, settings, clock=clock)
    spy = FeedSpy(detection.engine)
    store_all(store, STEPS)
    done = threading.Event()

    def judge_meanwhile() -> None:  # saves and flushes judge what is gathered too
        while not done.is_set():
            detection.judge_gathered()
            time.sleep(0.001)

    judging = threading.Thread(target=judge_meanwhile)
    detection.start()
    judging.start()
    try:
        for step in STEPS:
            detection.feed(step)
    finally:
        detection.stop()
        done.set()
        judging.join()
    judged = spy.judged()
    assert len(judged) == N * len(STEPS)
    assert sorted(judged) == sorted(keys([r for step in STEPS for r in step]))  # each once
    assert detection.engine.stats == REF_ENGINE.stats  # none skipped as late: in order
    asyncio.run(detection._flush(asyncio.Event()))
    assert stored_rows(store) == expected_rows(REF_CHANGES)


def test_a_writer_waits_when_the_engine_falls_behind(
    node: tuple[Store, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, settings = node
    monkeypatch.setattr(live, "GATHER_S", 0.01)
    monkeypatch.setattr(live, "GATHER_READINGS", 2 * N)
    monkeypatch.setattr(live, "MAX_GATHERED", 2 * N)
    detection = LiveDetection(store, settings, clock=clock)
    engine_may_go = threading.Event()
    spy = FeedSpy(detection.engine, hold=engine_may_go)
    fed = []

    def writer() -> None:
        for step in STEPS[:8]:
            detection.feed(step)
            fed.append(step)

    detection.start()
    writing = threading.Thread(target=writer)
    writing.start()
    try:
        time.sleep(0.5)  # the engine is stuck on its first slice
        assert writing.is_alive()  # so the writer is held back...
        assert len(fed) <= 2 + 2  # ...once the slice taken and MAX_GATHERED more are handed over
        assert detection._gathered_n <= 2 * N
        engine_may_go.set()
        writing.join(10.0)
        assert not writing.is_alive()
    finally:
        engine_may_go.set()
        detection.stop()
    assert len(spy.judged()) == 8 * N


def test_alarms_are_recorded_while_the_engine_is_judging(node: tuple[Store, Settings]) -> None:
    """The event loop records the changes already reported without waiting for a judgement
    in progress: it used to wait for the engine's lock, stalling the node's loop (the MQTT
    ingest, the web server) for as long as the engine judged."""
    store, settings = node
    detection = LiveDetection(store, settings, clock=clock)
    store_all(store, STEPS[: K + 26])
    for step in STEPS[: K + 25]:
        detection.feed(step)
    detection.judge_gathered()  # the step on ST02 and the source on ST03: reported
    engine_may_go = threading.Event()
    FeedSpy(detection.engine, hold=engine_may_go)
    detection.feed(STEPS[K + 25])
    judging = threading.Thread(target=detection.judge_gathered)
    judging.start()
    try:
        wait_until(lambda: detection._gathered_n == 0)  # taken: the engine is judging it
        assert judging.is_alive()
        asyncio.run(asyncio.wait_for(detection._flush(asyncio.Event()), 5.0))
        assert {a.station_id for a in store.alarms("all")} >= {"ST02", "ST03"}
        assert judging.is_alive()  # recorded while the engine still judged
    finally:
        engine_may_go.set()
        judging.join(10.0)
        detection.close()


def test_a_writer_waits_while_the_engine_has_its_time_bound_of_work_waiting(
    node: tuple[Store, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readings that are each their own time step cost the engine much more each: what may
    wait is bounded by the engine's time, not only by a count of readings."""
    store, settings = node
    monkeypatch.setattr(live, "GATHER_S", 0.01)
    monkeypatch.setattr(live, "MAX_GATHERED_S", 0.2)
    detection = LiveDetection(store, settings, clock=clock)
    spy = FeedSpy(detection.engine)
    slow = spy._feed

    def costly(readings: Sequence[Reading]) -> list[Alarm]:
        time.sleep(0.025 * len(readings))  # 25 ms a reading
        return slow(readings)

    spy._feed = costly
    waiting = []  # how much the engine had waiting, in its seconds, at each hand-over

    def writer() -> None:
        detection.feed(STEPS[0])
        wait_until(lambda: detection._cost_s >= 0.025)  # the first slice's cost is known now
        for step in STEPS[1:12]:
            detection.feed(step)
            with detection._ready:
                waiting.append(detection._gathered_n * detection._cost_s)

    detection.start()
    try:
        started = time.monotonic()
        writing = threading.Thread(target=writer)
        writing.start()
        writing.join(20.0)
        assert not writing.is_alive()
        wrote_s = time.monotonic() - started
    finally:
        detection.stop()
    assert len(spy.judged()) == 12 * N
    # never more than the bound, plus one hand-over, waits for the engine...
    assert max(waiting) <= 0.2 + 2 * N * 0.03, waiting  # (without the bound: up to 1.1 s)
    # ...so the writer went at the engine's pace: 1.2 s of work, of which at most that may wait
    assert wrote_s >= 0.6, wrote_s  # (without the bound: a few milliseconds)
    assert len(spy.calls) >= 4  # many small slices, not one


def test_stop_judges_what_is_gathered(
    node: tuple[Store, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, settings = node
    monkeypatch.setattr(live, "GATHER_S", 60.0)
    detection = LiveDetection(store, settings, clock=clock)
    detection.start()
    for step in STEPS[:10]:
        detection.feed(step)
    assert detection.engine.stats["readings"] == 0
    started = time.monotonic()
    detection.stop()
    assert time.monotonic() - started < 5.0  # not waiting for the bound
    assert detection.engine.stats["readings"] == 10 * N
    detection.feed(STEPS[10])  # after stop: gathered for the next judging (save, flush)
    detection.save()
    saved = store.load_detector_state(STATE_NAME)
    assert saved is not None
    restored = Engine(settings.detection, STATIONS, clock=clock)
    restored.restore(saved[1])
    assert restored.stats["readings"] == 11 * N


def test_a_saved_state_never_claims_an_unjudged_reading_or_an_unrecorded_alarm(
    node: tuple[Store, Settings],
) -> None:
    store, settings = node
    detection = LiveDetection(store, settings, clock=clock)
    store_all(store, STEPS)
    for step in STEPS:
        detection.feed(step)  # no worker: all of it gathered
    detection.save()
    saved = store.load_detector_state(STATE_NAME)
    assert saved is not None
    restored = Engine(settings.detection, STATIONS, clock=clock)
    restored.restore(saved[1])
    assert restored.stats == REF_ENGINE.stats  # judged before the snapshot
    assert stored_rows(store) == expected_rows(REF_CHANGES)  # recorded before the state
    assert detection.alarms_recorded == len(REF_CHANGES)
    # killed right after the save: a restart replays the last hour and judges none of it again
    second = LiveDetection(store, settings, clock=clock)
    replayed = second.warm_up()
    assert replayed > 0
    assert second.engine.stats["readings"] == REF_ENGINE.stats["readings"] + replayed
    assert second.engine.stats["skipped_late"] == REF_ENGINE.stats["skipped_late"] + replayed
    assert stored_rows(store) == expected_rows(REF_CHANGES)


def test_killed_with_readings_gathered_a_restart_gives_the_same_alarms(
    node: tuple[Store, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, settings = node
    monkeypatch.setattr(live, "GATHER_S", 60.0)
    first = LiveDetection(store, settings, clock=clock)
    first.start()
    for i, step in enumerate(STEPS):
        store.write_readings(step)
        first.feed(step)
        if i == K + 10:
            first.save()  # judges and records what was gathered, then saves
    # SIGKILL: everything after the save is stored but gathered, never judged; the worker
    # dies with the process (it is a daemon thread; here, it is simply abandoned)
    assert first.engine.stats["readings"] == N * (K + 11)
    second = LiveDetection(store, settings, clock=clock)
    second.warm_up()
    assert stored_rows(store) == expected_rows(REF_CHANGES)
    assert second.engine.now == REF_ENGINE.now
    first.stop()


def test_a_reading_refused_for_being_ahead_of_the_clock_opens_future_time(
    node: tuple[Store, Settings],
) -> None:
    """The ingest refuses a reading more than its skew ahead (a probe whose clock or zone
    is wrong, 7 h ahead for local time sent as UTC): the engine never saw it, so its
    ``future_time`` test could not fire live; the officer only saw the station go silent."""
    store, settings = node
    detection = LiveDetection(store, settings, clock=clock)
    try:
        detection.warm_up()
        station = STATIONS[0].station_id
        ahead = datetime.fromtimestamp(clock() + 7 * 3600, UTC)
        detection.refused_ahead([Reading(station_id=station, time=ahead, dose_rate_nsv_h=95.0)])
        asyncio.run(detection._flush(asyncio.Event()))
        [alarm] = store.alarms("open")
        assert (alarm.station_id, alarm.kind, alarm.category) == (
            station,
            "future_time",
            "technical",
        )
        assert alarm.opened_at == ahead
        assert detection.engine.stats["readings"] == 0  # it is judged by nothing else
    finally:
        detection.close()
