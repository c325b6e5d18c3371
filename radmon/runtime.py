"""Process wiring for the long-running node: web server, MQTT ingest, the simulated province,
the detectors, alerting.

``radmon demo`` and ``radmon serve`` share this.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import uvicorn
from sqlalchemy.exc import InterfaceError, OperationalError

from radmon.config import Settings
from radmon.models import AnyReading
from radmon.store import Store

if TYPE_CHECKING:
    from ingest import ProvinceSimulator

log = logging.getLogger("radmon")
T = TypeVar("T")
# Whoever judges readings once they are committed (the detectors); every writer calls it.
OnStored = Callable[[Sequence[AnyReading]], None]
ROLLUP_REFRESH_S = 60.0
_BACKFILL_BATCH = 20_000
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# SIGINT or SIGTERM came before the node's start-up could take it (see heed_stop_signals).
_stop_requested = threading.Event()


def heed_stop_signals() -> None:
    """From now on a SIGINT or SIGTERM stops the node that is about to start, orderly.

    A shell starts a background job with SIGINT ignored; the web server heeds it once it
    runs, and until then the start-up (migrations, the detectors' warm-up: seconds) went on
    and served. A signal is noted here and ends the start-up at its next stage.
    """
    for signum in _STOP_SIGNALS:
        signal.signal(signum, lambda *_: _stop_requested.set())


def _on_stop_signals(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> bool:
    """Call *callback* on SIGINT/SIGTERM; False where signals cannot be had (a node run in a
    thread other than the main one, as an embedding program might)."""
    try:
        for signum in _STOP_SIGNALS:
            loop.add_signal_handler(signum, callback)
    except (ValueError, RuntimeError):
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether *host* only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def start_simulator(store: Store, settings: Settings) -> ProvinceSimulator:
    """Create the simulated province, register its stations and backfill its recent history."""
    from ingest import ProvinceSimulator, SimulationConfig

    now = datetime.now(UTC)
    start = now - timedelta(hours=settings.simulator.backfill_hours)
    simulator = ProvinceSimulator(SimulationConfig.from_settings(settings.simulator, start))
    store.upsert_stations(simulator.stations)
    batch = []
    while simulator.next_time <= now:
        batch.extend(simulator.to_readings(simulator.step()))
        if len(batch) >= _BACKFILL_BATCH:
            store.write_readings(batch)
            batch = []
    store.write_readings(batch)
    return simulator


async def until_done(
    call: Callable[..., T], *args: object, stop: asyncio.Event, what: str = "store write"
) -> T:
    """Run the blocking *call* in a thread, retrying with backoff while the database is away.

    Only a lost or refused connection is retried (the call must be idempotent); any other
    error is a bug or bad data and propagates. Gives up only when *stop* is set.
    """
    delay = 0.5
    while True:
        try:
            return await asyncio.to_thread(call, *args)
        except (OperationalError, InterfaceError):
            if stop.is_set():
                raise
            log.warning("%s failed; retrying in %.1f s", what, delay, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 30.0)


async def wait_any(*events: asyncio.Event, timeout: float) -> None:
    """Until one of *events* is set, or *timeout* seconds pass."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def simulated_clock(start: float, speed: float) -> Callable[[], float]:
    """Now in a simulation that began at *start* (epoch seconds) and runs at *speed*."""
    real_start = time.time()
    return lambda: start + (time.time() - real_start) * speed


async def hand_over(on_stored: OnStored | None, readings: Sequence[AnyReading]) -> None:
    """Give readings just committed to *on_stored*, off the event loop.

    A failure there is logged and never stops the writer: the readings are stored, and the
    detectors' own state decides what they make of the next ones.
    """
    if on_stored is None or not readings:
        return
    try:
        await asyncio.to_thread(on_stored, readings)
    except Exception:
        log.exception("judging %d stored readings failed", len(readings))


async def keep_rollups_current(
    store: Store, stop: asyncio.Event, every_s: float = ROLLUP_REFRESH_S
) -> None:
    """Refresh the hourly and daily rollups every *every_s* until *stop* (see Store)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        if stop.is_set():
            return
        try:
            hours = await asyncio.to_thread(store.refresh_rollups)
        except (OperationalError, InterfaceError):
            log.warning("rollup refresh failed; next try in %.0f s", every_s, exc_info=True)
            continue
        if hours:
            log.debug("rollups refreshed for %d hour(s)", hours)


async def run_node(store: Store, settings: Settings, *, open_reads: bool) -> None:
    """Run the node's tasks (simulator, MQTT ingest, as configured) and the web server.

    SIGINT/SIGTERM stop the web server; the tasks then finish what they hold (a batch being
    written is committed and acknowledged) before the process exits.
    """
    from dashboard import create_app

    # Stopping goes in stages, each task's stop event set once the stage before has finished:
    # the writers (and the rollups), then the detectors, which judge what the writers' last
    # batches stored before their final save, then alerting, which plans their last alarms.
    stop, detection_stop, alerting_stop = asyncio.Event(), asyncio.Event(), asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    later: list[tuple[asyncio.Event, asyncio.Task[None]]] = []
    ingest = None
    alerting = None
    # Until the web server takes the signals over, SIGINT/SIGTERM set this and the start-up
    # ends after the stage it is in (heed_stop_signals).
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = _on_stop_signals(loop, stopping.set)
    if _stop_requested.is_set():
        stopping.set()
    if settings.alerting.enabled and settings.alerting.routes:
        from alerting import AlertingService

        alerting = AlertingService(store, settings)
        log.info(
            "alerting: %d route(s), channels %s",
            len(settings.alerting.routes),
            ", ".join(alerting.channels),
        )
    simulator = (
        await asyncio.to_thread(start_simulator, store, settings)
        if settings.simulator.enabled
        else None
    )
    detection = None
    if settings.detection.enabled and not stopping.is_set():
        from detectors.live import LiveDetection

        on_alarms = alerting.alarms_changed if alerting is not None else None
        detection = LiveDetection(store, settings, on_alarms=on_alarms)
        await asyncio.to_thread(detection.warm_up)
    if stopping.is_set():
        log.info("stopped while starting")
        if detection is not None:
            detection.close()
        store.close()
        return
    if detection is not None:
        later.append(
            (detection_stop, asyncio.create_task(detection.run(detection_stop), name="detection"))
        )
    if alerting is not None:
        later.append(
            (alerting_stop, asyncio.create_task(alerting.run(alerting_stop), name="alerting"))
        )
    on_stored = detection.feed if detection is not None else None
    on_ahead = detection.refused_ahead if detection is not None else None
    if simulator is not None:
        from ingest import stream

        log.info("simulating %d stations", len(simulator.stations))
        if detection is not None:  # a demo's simulated time may run faster than the clock
            detection.set_clock(
                simulated_clock(simulator.time.timestamp(), settings.simulator.speed)
            )

        async def sink(batch: list) -> None:
            added = await until_done(store.add_readings, batch, stop=stop)
            await hand_over(on_stored, added)

        tasks.append(
            asyncio.create_task(
                stream(simulator, sink, settings.simulator.speed, stop), name="simulator"
            )
        )
    if settings.mqtt.enabled:
        from ingest.mqtt import MqttIngest

        ingest = MqttIngest(store, settings, on_stored, on_ahead)
        tasks.append(asyncio.create_task(ingest.run(stop), name="MQTT ingest"))
    if store.dialect == "postgresql":
        tasks.append(asyncio.create_task(keep_rollups_current(store, stop), name="rollups"))
    app = create_app(
        store,
        settings,
        open_reads=open_reads,
        ingest=ingest,
        on_stored=on_stored,
        on_ahead=on_ahead,
    )
    settle_collector()
    config = uvicorn.Config(
        app,
        host=settings.web.host,
        port=settings.web.port,
        log_level="info",
        timeout_graceful_shutdown=2,
        proxy_headers=True,
        forwarded_allow_ips=settings.web.trusted_proxies,
    )
    server = uvicorn.Server(config)
    failed: list[str] = []

    def stop_if_failed(task: asyncio.Task[None]) -> None:
        # A node whose ingest or detectors died must not go on looking healthy: it stops,
        # non-zero, and its service manager starts it again.
        if task.cancelled() or stop.is_set() or task.exception() is None:
            return
        failed.append(task.get_name())
        log.critical("%s failed; stopping the node", task.get_name(), exc_info=task.exception())
        server.should_exit = True

    for task in [*tasks, *(task for _, task in later)]:
        task.add_done_callback(stop_if_failed)
    # uvicorn re-raises the signal that stopped it once it has shut down: SIGTERM's default
    # disposition would kill the process before the tasks below finish, and SIGINT would
    # surface as a KeyboardInterrupt traceback. With these handlers the re-raise returns, the
    # tasks finish what they hold, and Ctrl-C or the service manager's stop exits 0.
    for signum in _STOP_SIGNALS:
        if handled:
            loop.remove_signal_handler(signum)
            signal.signal(signum, lambda *_: None)
    try:
        if not stopping.is_set():  # a signal during the last stages of the start-up
            await server.serve()  # returns after SIGINT/SIGTERM (uvicorn installs the handlers)
    finally:
        stop.set()
        for task in tasks:
            await _finish(task)
        for stage_stop, task in later:
            stage_stop.set()
            await _finish(task)
        if detection is not None:
            detection.close()
        store.close()
    if failed:
        raise SystemExit(f"radmon: stopped because {', '.join(failed)} failed (see the log)")


def settle_collector() -> None:
    """The garbage collector of a node that has started (``radmon serve``, the benchmarks).

    Everything made so far lives as long as the node: it is kept out of the collector's
    scans, which otherwise stall every request under load (bench/dashboard_live.py). The
    ingest allocates a few tracked objects per reading (its row, the engine's copy of
    it) that die by reference counting, not in cycles; at the default 700 allocations the
    youngest generation ran thousands of times a second under load. At 20,000, batches of 100
    readings per message went about 10 % faster (docs/benchmarks.md), with the same peak RSS.
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


async def _finish(task: asyncio.Task[None]) -> None:
    """Let a stopping task finish what it holds, for at most a few seconds."""
    try:
        await asyncio.wait_for(task, timeout=5)
    except (TimeoutError, asyncio.CancelledError):
        task.cancel()
    except Exception:
        log.exception("a task failed while stopping")
