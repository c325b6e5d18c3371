"""The engine inside ``radmon serve`` and ``radmon demo``.

Every writer of readings (MQTT ingest, HTTP push, the simulator) hands what it stored to
:meth:`LiveDetection.feed` after the commit, so each reading is judged once without being read
back. Alarm changes go to the store by an idempotent upsert; the engine's state is saved every
``state_save_s``. After a restart the engine restores that state and replays the readings stored
since, which yields exactly the alarms an uninterrupted run would have raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from detectors.engine import Engine
from radmon.config import Settings
from radmon.models import Alarm, Reading, Station
from radmon.runtime import until_done, wait_any
from radmon.store import Store

log = logging.getLogger(__name__)
STATE_NAME = "engine"
FLUSH_S = 1.0
TICK_S = 30.0
STATIONS_REFRESH_S = 60.0
# Replay starts this long before the saved state's latest reading: a station that lagged behind
# the others may have readings older than that in the store that the snapshot never saw.
REPLAY_MARGIN = timedelta(hours=1)


class LiveDetection:
    """The streaming engine of a node: fed after each store write, alarms written back."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        on_alarms: Callable[[], None] | None = None,
    ):
        """*clock* is the node's "now" (epoch seconds): the wall clock, or the simulated
        clock of a demo that runs faster than time. *on_alarms* is told (from any thread)
        each time alarm changes have been recorded: alerting plans at once."""
        self.store = store
        self.settings = settings
        self.clock = clock
        self.on_alarms = on_alarms
        self.engine = self._new_engine()
        self._lock = threading.Lock()
        self._pending: list[Alarm] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._news: asyncio.Event | None = None
        self.alarms_recorded = 0

    def warm_up(self) -> int:
        """Restore the saved state, replay what was stored since; returns readings replayed."""
        saved = self.store.load_detector_state(STATE_NAME)
        now = datetime.fromtimestamp(self.clock(), UTC)
        start = now - timedelta(days=self.settings.detection.warmup_history_days)
        if saved is not None:
            try:
                self.engine.restore(saved[1])
                self._add_stations(self.store.stations())
                latest = (
                    datetime.fromtimestamp(self.engine.now, UTC) if self.engine.now > 0 else start
                )
                start = max(start, latest - REPLAY_MARGIN)
            except Exception:  # a damaged blob: a zip, JSON or shape error of any kind
                log.exception("saved detector state unusable; warming up from history")
                self.engine = self._new_engine()
        replayed = 0
        for chunk in self.store.iter_readings(start, now):
            self.feed(chunk)
            replayed += len(chunk)
        self.store.record_alarms(self._take())
        log.info("detection warmed up on %d stored readings since %s", replayed, start.isoformat())
        return replayed

    def set_clock(self, clock: Callable[[], float]) -> None:
        with self._lock:
            self.clock = self.engine.clock = clock

    def _add_stations(self, stations: list[Station]) -> None:
        with self._lock:
            self.engine.add_stations(stations)
        self._stations = stations

    def _new_engine(self) -> Engine:
        self._stations = self.store.stations()
        return Engine(
            self.settings.detection,
            self._stations,
            site_timezone=self.settings.site.timezone,
            clock=self.clock,
        )

    def feed(self, readings: Sequence[Reading]) -> None:
        """Judge readings just stored (any thread)."""
        if not readings:
            return
        with self._lock:
            found = self.engine.feed(readings)
            self._pending.extend(found)
        if found and self._loop is not None and self._news is not None:
            # record at once rather than at the next flush: an alarm's SMS waits on this
            with contextlib.suppress(RuntimeError):  # the loop has closed: shutting down
                self._loop.call_soon_threadsafe(self._news.set)

    def _take(self) -> list[Alarm]:
        with self._lock:
            pending, self._pending = self._pending, []
        return pending

    def save(self) -> None:
        with self._lock:
            blob = self.engine.snapshot()
        self.store.save_detector_state(STATE_NAME, blob, datetime.now(UTC))

    async def run(self, stop: asyncio.Event) -> None:
        """Write alarm changes as they come, judge silence, save the state; until *stop*."""
        last_tick = last_save = last_refresh = time.monotonic()
        every = self.settings.detection.state_save_s
        self._loop, self._news = asyncio.get_running_loop(), asyncio.Event()
        while not stop.is_set():
            await wait_any(stop, self._news, timeout=FLUSH_S)
            self._news.clear()
            moment = time.monotonic()
            if moment - last_tick >= TICK_S:
                last_tick = moment
                with self._lock:
                    self._pending.extend(self.engine.tick(self.clock()))
            if moment - last_refresh >= STATIONS_REFRESH_S:
                last_refresh = moment
                stations = await until_done(self.store.stations, stop=stop, what="stations")
                if stations != self._stations:
                    # the neighbour matrix is rebuilt: quadratic, so never on the event loop
                    await asyncio.to_thread(self._add_stations, stations)
            await self._flush(stop)
            if moment - last_save >= every or stop.is_set():
                last_save = moment
                await until_done(self.save, stop=stop, what="detector state save")

    async def _flush(self, stop: asyncio.Event) -> None:
        pending = self._take()
        if pending:
            await until_done(self.store.record_alarms, pending, stop=stop, what="alarm write")
            self.alarms_recorded += len(pending)
            if self.on_alarms is not None:
                self.on_alarms()
