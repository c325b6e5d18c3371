"""Process wiring for the long-running node: web server plus the live simulated province.

``radmon demo`` and ``radmon serve`` share this; later the MQTT ingest, detectors and alerting
join the same task group.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import uvicorn

from radmon.config import Settings
from radmon.store import Store

if TYPE_CHECKING:
    from ingest import ProvinceSimulator

log = logging.getLogger("radmon")
_BACKFILL_BATCH = 20_000


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


async def write_until_stored(store: Store, batch: list, stop: asyncio.Event) -> None:
    """Write *batch*, retrying with backoff while the database is away; gives up only at stop."""
    delay = 0.5
    while True:
        try:
            await asyncio.to_thread(store.write_readings, batch)
            return
        except Exception:
            if stop.is_set():
                raise
            log.warning("store write failed; retrying in %.1f s", delay, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 30.0)


async def run_node(store: Store, settings: Settings, *, open_reads: bool) -> None:
    """Serve the web application (and the simulator when enabled) until SIGINT/SIGTERM."""
    from dashboard import create_app

    tasks: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    if settings.simulator.enabled:
        from ingest import stream

        simulator = await asyncio.to_thread(start_simulator, store, settings)
        log.info("simulating %d stations", len(simulator.stations))

        async def sink(batch: list) -> None:
            await asyncio.to_thread(store.write_readings, batch)

        tasks.append(asyncio.create_task(stream(simulator, sink, settings.simulator.speed, stop)))
    app = create_app(store, settings, open_reads=open_reads)
    config = uvicorn.Config(
        app,
        host=settings.web.host,
        port=settings.web.port,
        log_level="info",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    try:
        await server.serve()  # returns after SIGINT/SIGTERM (uvicorn installs the handlers)
    finally:
        stop.set()
        for task in tasks:
            try:
                await asyncio.wait_for(task, timeout=3)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        store.close()
