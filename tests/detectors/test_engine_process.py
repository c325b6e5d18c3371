"""The engine in a process of its own: the same judgements as in-process, errors raised in the
caller, and a killed process replaced from the saved state without losing an alarm."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from detectors import Engine, live
from detectors.engine_process import EngineLost, EngineProcess
from detectors.live import LiveDetection
from radmon.config import Settings
from radmon.store import Store
from tests.detectors.test_live import (
    REF_CHANGES,
    REF_ENGINE,
    STATIONS,
    STEPS,
    K,
    clock,
    expected_rows,
    snapshot_meta_changed,
    store_all,
    stored_rows,
)


@pytest.fixture
def child() -> EngineProcess:
    engine = EngineProcess(
        Settings().detection, STATIONS, site_timezone=Settings().site.timezone, clock=clock
    )
    yield engine
    engine.close()


def test_the_engine_in_a_process_judges_as_the_engine_here(child: EngineProcess) -> None:
    changes = []
    for step in STEPS:
        changes += child.feed(step)
    assert changes == REF_CHANGES
    assert child.now == REF_ENGINE.now
    assert child.stats == REF_ENGINE.stats
    assert child.snapshot() == REF_ENGINE.snapshot()


def test_a_restored_snapshot_goes_on_as_the_engine_it_came_from(child: EngineProcess) -> None:
    here = Engine(Settings().detection, STATIONS, site_timezone=Settings().site.timezone)
    here.clock = clock
    for step in STEPS[: K + 10]:
        here.feed(step)
    child.restore(here.snapshot())
    rest = [a for step in STEPS[K + 10 :] for a in child.feed(step)]
    assert rest == [a for step in STEPS[K + 10 :] for a in here.feed(step)]


def test_an_error_in_the_process_is_raised_here_and_the_engine_goes_on(
    child: EngineProcess,
) -> None:
    with pytest.raises(ValueError, match="snapshot version"):
        child.restore(snapshot_meta_changed(version=99))
    assert child.feed(STEPS[0]) == []
    assert child.stats["readings"] == len(STEPS[0])


def test_a_dead_process_is_reported_as_lost(child: EngineProcess) -> None:
    child.feed(STEPS[0])
    os.kill(child.process.pid, signal.SIGKILL)
    child.process.join(10)
    with pytest.raises(EngineLost):
        child.feed(STEPS[1])


def test_a_hung_process_is_ended_and_reported_as_lost() -> None:
    """A stopped child (SIGSTOP here; swap or a loop in life) left every call waiting, the
    ingest's writers behind it, for ever and without a word."""
    engine = EngineProcess(
        Settings().detection,
        STATIONS,
        site_timezone=Settings().site.timezone,
        clock=clock,
        answer_within_s=1.0,
    )
    try:
        engine.feed(STEPS[0])
        os.kill(engine.process.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(EngineLost, match="did not answer feed_columns within 1 s"):
            engine.feed(STEPS[1])
        assert time.monotonic() - started < 5
        engine.process.join(10)
        assert not engine.process.is_alive()
    finally:
        engine.close()


def test_a_program_that_exits_without_closing_its_engine_still_exits(tmp_path) -> None:
    """multiprocessing's exit handler joins its daemon children after SIGTERM, which the
    child ignores; a weakref.finalize made before multiprocessing was imported runs after
    that handler, so without the engine's own exit hook the program would wait forever."""
    script = tmp_path / "forgets.py"
    script.write_text(
        textwrap.dedent(
            """
            import weakref

            class Early: ...

            early = Early()
            weakref.finalize(early, print, "early finalizer ran")
            from detectors.engine_process import EngineProcess

            if __name__ == "__main__":
                kept = EngineProcess()
                print("engine at", kept.now, flush=True)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30, cwd=os.getcwd()
    )
    assert done.returncode == 0, done.stderr
    assert "engine at" in done.stdout
    assert "early finalizer ran" in done.stdout


def run_with_a_kill(detection: LiveDetection, store: Store, kill_at: int, then) -> None:
    """Store and hand over every step, saving the state at K; at *kill_at*, once all is
    judged, SIGKILL the engine's process and call *then*; judge and record what is left."""
    first = detection.engine
    for i, step in enumerate(STEPS):
        store.write_readings(step)
        detection.feed(step)
        if i == K:
            detection.judge_gathered()
            detection.save()
        if i == kill_at:
            detection.judge_gathered()
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.join(10)
            then()
    detection.judge_gathered()
    asyncio.run(detection._flush(asyncio.Event()))


@pytest.mark.parametrize(
    ("kill_at", "noticed_by"),
    [
        (K + 5, "judge"),  # inside the step
        (K + 25, "judge"),  # after the passing source
        (K + 50, "judge"),  # after the step cleared
        (K + 25, "save"),
        (K + 25, "tick"),
    ],
)
def test_a_killed_engine_is_replaced_from_saved_state_without_losing_an_alarm(
    store: Store,
    backend_settings: Settings,
    caplog: pytest.LogCaptureFixture,
    kill_at: int,
    noticed_by: str,
) -> None:
    """SIGKILL of the engine's process mid-stream, noticed by the next judgement, state save
    or silence tick: the node goes on, and stores exactly the alarms of a run that was never
    interrupted."""
    store.upsert_stations(STATIONS)
    detection = LiveDetection(store, backend_settings, clock=clock)
    first = detection.engine
    assert isinstance(first, EngineProcess)
    notice = {"judge": detection.judge_gathered, "save": detection.save, "tick": detection._tick}

    def noticed() -> None:
        notice[noticed_by]()
        if noticed_by != "judge":  # nothing was gathered: the call itself noticed
            assert detection.engine is not first

    with caplog.at_level(logging.ERROR, logger="detectors.live"):
        run_with_a_kill(detection, store, kill_at, noticed)
    assert "engine's process died" in caplog.text
    assert detection.engine is not first and detection.engine.process.is_alive()
    assert stored_rows(store) == expected_rows(REF_CHANGES)
    assert detection.engine.now == REF_ENGINE.now
    detection.close()
    assert not detection.engine.process.is_alive()


class _Stillborn(EngineProcess):
    """An engine process that dies as soon as it has started."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(10)


def test_an_engine_process_that_cannot_live_gives_way_to_a_thread(
    store: Store,
    backend_settings: Settings,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store.upsert_stations(STATIONS)
    detection = LiveDetection(store, backend_settings, clock=clock)

    def every_new_one_dies() -> None:
        monkeypatch.setattr(live, "EngineProcess", _Stillborn)

    with caplog.at_level(logging.ERROR, logger="detectors.live"):
        run_with_a_kill(detection, store, K, every_new_one_dies)
    assert "died too; judging in serve's own process" in caplog.text
    assert type(detection.engine) is Engine
    assert stored_rows(store) == expected_rows(REF_CHANGES)
    assert detection.engine.now == REF_ENGINE.now


def test_in_a_thread_when_configured(store: Store, backend_settings: Settings) -> None:
    settings = backend_settings.model_copy(
        update={"detection": backend_settings.detection.model_copy(update={"own_process": False})}
    )
    store.upsert_stations(STATIONS)
    store_all(store, STEPS)
    detection = LiveDetection(store, settings, clock=clock)
    assert type(detection.engine) is Engine
    detection.warm_up()
    assert stored_rows(store) == expected_rows(REF_CHANGES)
    detection.close()  # nothing to end
