"""Live streaming: the simulator paced against the wall clock, for ``radmon demo``."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from ingest.simulator.engine import ProvinceSimulator
from radmon.models import Reading

log = logging.getLogger(__name__)

Sink = Callable[[list[Reading]], Awaitable[object] | object]


async def stream(
    simulator: ProvinceSimulator,
    sink: Sink,
    speed: float,
    stop: asyncio.Event,
    *,
    now: datetime | None = None,
) -> int:
    """Feed each step's readings to *sink* when its simulated time is due; return the step count.

    Simulated time runs at *speed* simulated seconds per real second from *now* (the simulated
    time that corresponds to the moment of the call; default: the simulator's current time). Steps
    already due (a simulator started in the past, for a backfill) are sent at once, then the
    stream keeps pace. *sink* may be sync or async; an error in it is logged and the stream goes
    on with the next step, so a store hiccup does not stop the demo. Returns promptly once *stop*
    is set.
    """
    if not speed > 0:
        raise ValueError(f"speed={speed}: must be > 0 simulated seconds per real second")
    loop = asyncio.get_running_loop()
    real_zero = loop.time()
    sim_zero = now if now is not None else simulator.time
    sent = 0
    while not stop.is_set():
        due = real_zero + (simulator.next_time - sim_zero).total_seconds() / speed
        delay = due - loop.time()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            if stop.is_set():
                break
        else:
            await asyncio.sleep(0)  # catching up: let the rest of the process run between steps
        readings = simulator.to_readings(simulator.step())
        try:
            outcome = sink(readings)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            log.exception("simulator sink failed at %s; going on", simulator.time.isoformat())
        sent += 1
    return sent
