"""The engine inside ``radmon serve`` and ``radmon demo``.

Every writer of readings (MQTT ingest, HTTP push, the simulator) hands what it stored to
:meth:`LiveDetection.feed` after the commit, so each reading is judged once without being read
back. Alarm changes go to the store by an idempotent upsert; the engine's state is saved every
``state_save_s``. After a restart the engine restores that state and replays the readings stored
since, which yields exactly the alarms an uninterrupted run would have raised.

``feed`` does not judge: it gathers. A worker thread judges what has gathered in one
:meth:`Engine.feed` once ``GATHER_READINGS`` readings are waiting or the oldest has waited
``GATHER_S``. A commit of the MQTT ingest holds a few thousand readings of a few dozen
stations, and the engine's cost is mostly per time step (a millisecond or so, plus a few
microseconds a station): judged commit by commit, a reading costs several times what it costs
in steps many stations wide (docs/benchmarks.md). Gathering also frees the writer: its
commit/acknowledge loop goes on while the engine works (on the same GIL, though).

Each reading handed over is judged exactly once: the worker takes the whole gathered list at a
time, under the engine's lock, so judgements follow the order of hand-over. Memory and delay
are bounded: while ``MAX_GATHERED`` readings, or ``MAX_GATHERED_S`` of the engine's time,
wait, ``feed`` blocks, so a writer that outruns the engine slows down (the MQTT ingest then
acknowledges later, and the broker holds the backlog within the receive maximum) instead of
the list growing. A saved state never claims more than was judged and recorded: :meth:`save`
judges what is gathered and records the pending alarm changes before it takes the snapshot's
blob to the store, and :meth:`stop` judges what is gathered before the final save. A reading
handed over but not yet judged when the process is killed is in the store, after the saved
state: warm-up replays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import chain
from operator import attrgetter
from typing import NamedTuple

from detectors.engine import Engine
from detectors.engine_process import EngineLost, EngineProcess
from radmon.config import Settings
from radmon.models import Alarm, AnyReading, Station
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
# The longest a reading handed over waits before the worker starts judging it, when the worker
# is idle. An alarm it raises is recorded and planned at once after that (an SMS goes out
# within seconds), so this is what gathering adds to an alarm's latency. While the engine is
# busy, what arrives meanwhile gathers anyway: under load the slices widen by themselves.
GATHER_S = 0.3
# Judge at once when this many readings have gathered, without waiting for GATHER_S. With the
# MQTT benchmark's backlog (100 readings of a station per message) that is about 250 stations
# x 100 windows: the engine costs some 10 us a reading there, against 25-50 us for a single
# commit of 5,000 readings and 7 us for 100,000 (in-process, 1,000 stations, loaded machine).
GATHER_READINGS = 25_000
# While this many readings wait, feed() blocks until the worker takes them: a writer that
# outruns the engine waits for it (the MQTT ingest acknowledges later, and the broker holds
# the backlog) rather than the list growing. With the slice being judged, at most about
# twice this many readings are held, as _Gathered: some 8 MB.
MAX_GATHERED = GATHER_READINGS
# ... and while what waits would take the engine longer than this to judge, at the cost per
# reading of its last slice. A reading is its own step when it is the only one of its window
# (a trickle of single readings costs about 1-2 ms each): 25,000 of them would take the engine
# half a minute, which would delay alarms and a clean stop (which judges what is gathered) by
# as much.
MAX_GATHERED_S = 0.5
# The cost per reading assumed before the first slice is judged: the worst case above, so
# that the first slice (a restarted node catching up with its backlog) stays small.
FIRST_COST_S = 1e-3


class _Gathered(NamedTuple):
    """What :meth:`Engine.feed` reads of a reading, kept while it waits: about 150 bytes
    instead of some 900 for a whole ``Reading`` (its other fields, and pydantic's own)."""

    time: datetime
    station_id: str
    dose_rate_nsv_h: float
    precip_mm_h: float | None


# reading → _Gathered without a Python-level call per reading
_fields = attrgetter(*_Gathered._fields)
_gathered = partial(tuple.__new__, _Gathered)


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
        self._lock = threading.Lock()  # the engine, while it judges
        # alarm changes the engine reported, not yet recorded: a lock of their own, so the
        # event loop takes them without waiting for a judgement in progress
        self._pending_lock = threading.Lock()
        self._pending: list[Alarm] = []
        # readings handed over and not yet judged; the condition also guards the worker's state
        self._gathered: list[list[_Gathered]] = []
        self._gathered_n = 0
        self._gathered_since = 0.0  # time.monotonic() when the oldest of them was handed over
        # the engine's seconds per reading in the last slice it judged; before the first, the
        # worst case (each reading a time step of its own), so the first slice stays small
        self._cost_s = FIRST_COST_S
        self._ready = threading.Condition()
        self._worker: threading.Thread | None = None
        self._stopping = False
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
                self.engine.close()
                self.engine = self._new_engine()
        replayed = 0
        for chunk in self.store.iter_readings(start, now):  # in time order: judged as it comes
            self._judge(chunk)
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

    def _new_engine(self, own_process: bool | None = None) -> Engine | EngineProcess:
        self._stations = self.store.stations()
        if own_process is None:
            own_process = self.settings.detection.own_process
        make = EngineProcess if own_process else Engine
        return make(
            self.settings.detection,
            self._stations,
            site_timezone=self.settings.site.timezone,
            clock=self.clock,
            live=True,
        )

    # -- gathering and judging ------------------------------------------------------------------

    def feed(self, readings: Sequence[AnyReading]) -> None:
        """Hand over readings just stored (any thread): they are judged within ``GATHER_S``.

        Blocks while ``MAX_GATHERED`` readings are already waiting for the worker. Without a
        worker (before :meth:`start`, after :meth:`stop`), a full gathering is judged here,
        in the caller's thread, and the rest by the next :meth:`judge_gathered` or
        :meth:`save`.
        """
        if not readings:
            return
        kept = list(map(_gathered, map(_fields, readings)))
        with self._ready:
            while self._worker is not None and self._behind():
                self._ready.wait()
            if not self._gathered:
                self._gathered_since = time.monotonic()
                self._ready.notify_all()  # the worker starts the clock of this gathering
            self._gathered.append(kept)
            self._gathered_n += len(kept)
            full = self._due()
            if full and self._worker is not None:
                self._ready.notify_all()
                return
        if full:
            self.judge_gathered()

    def refused_ahead(self, readings: Sequence[AnyReading]) -> None:
        """Hand over readings the ingest refused for being ahead of its clock: they only
        open their stations' ``future_time`` episodes (any thread; judged at once, as they
        are few, and never stored, so never replayed)."""
        if not readings:
            return
        with self._lock:
            try:
                found = self.engine.refused_ahead(readings)
            except EngineLost:
                found = None
            else:
                self._keep(found)
        if found is None:
            self._restart()
        elif found:
            self._announce()

    def _due(self) -> bool:
        """Whether what is gathered is to be judged now, without waiting for GATHER_S."""
        return self._gathered_n >= GATHER_READINGS or self._behind()

    def _behind(self) -> bool:
        """Whether writers are to wait: the engine has as much waiting as it may have."""
        n = self._gathered_n
        return n >= MAX_GATHERED or (n > 0 and n * self._cost_s >= MAX_GATHERED_S)

    def judge_gathered(self) -> int:
        """Judge every reading handed over so far in one engine feed; returns how many."""
        with self._lock:  # taken and judged under the engine's lock: in hand-over order
            with self._ready:
                gathered, self._gathered, self._gathered_n = self._gathered, [], 0
                self._ready.notify_all()  # writers held back may go on
            if not gathered:
                return 0
            readings = gathered[0] if len(gathered) == 1 else list(chain.from_iterable(gathered))
            started = time.perf_counter()
            try:
                found = self.engine.feed(readings)
            except EngineLost:
                found = None
            else:
                self._cost_s = (time.perf_counter() - started) / len(readings)
                self._keep(found)
        if found is None:
            self._restart()  # these readings are stored: the restart's replay judges them
        elif found:
            self._announce()
        return len(readings)

    def _restart(self) -> None:
        """A new engine in place of one whose process died: restored from the saved state,
        and the readings stored since replayed, as after a restart of the node. Alarm changes
        the lost engine found and had not yet reported are found again."""
        log.error(
            "the detection engine's process died or hung; starting a new one from saved state"
        )
        with self._lock:
            self.engine.close()
            self.engine = self._new_engine()
        try:
            self.warm_up()
        except EngineLost:  # it cannot live (memory limit?): judging slower beats not judging
            log.error("the new engine process died too; judging in serve's own process instead")
            with self._lock:
                self.engine.close()
                self.engine = self._new_engine(own_process=False)
            self.warm_up()

    def _judge(self, readings: Sequence[AnyReading]) -> None:
        """Judge *readings* at once (the warm-up's replay, in time order)."""
        with self._lock:
            self._keep(self.engine.feed(readings))

    def _announce(self) -> None:
        # record at once rather than at the next flush: an alarm's SMS waits on this
        loop, news = self._loop, self._news
        if loop is not None and news is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: shutting down
                loop.call_soon_threadsafe(news.set)

    def start(self) -> None:
        """Judge gathered readings in a worker thread from now on, until :meth:`stop`."""
        with self._ready:
            if self._worker is not None:
                return
            self._stopping = False
            self._worker = threading.Thread(target=self._work, name="detection", daemon=True)
            self._worker.start()

    def stop(self) -> None:
        """Stop the worker once it has judged everything gathered; anything handed over
        afterwards is judged by the caller (see :meth:`feed`)."""
        with self._ready:
            worker, self._stopping = self._worker, True
            self._ready.notify_all()
        if worker is not None:
            worker.join()
        self.judge_gathered()  # whatever came while it finished

    def _work(self) -> None:
        try:
            while True:
                with self._ready:
                    while not (self._stopping or self._due()):
                        if self._gathered:
                            left = self._gathered_since + GATHER_S - time.monotonic()
                            if left <= 0:
                                break
                            self._ready.wait(left)
                        else:
                            self._ready.wait()
                    stopping = self._stopping
                try:
                    self.judge_gathered()
                except Exception:  # a bug: log it, the readings are stored, go on with the next
                    log.exception("judging gathered readings failed")
                if stopping:
                    return
        finally:
            with self._ready:
                self._worker = None
                self._ready.notify_all()  # writers held back now judge in their own thread

    def close(self) -> None:
        """End the engine's process, if it has one (after the final :meth:`save`)."""
        with self._lock:
            self.engine.close()

    def _keep(self, alarms: list[Alarm]) -> None:
        with self._pending_lock:
            self._pending.extend(alarms)

    def _take(self) -> list[Alarm]:
        with self._pending_lock:
            pending, self._pending = self._pending, []
        return pending

    def _tick(self) -> None:
        # readings already handed over first: a station they speak for is not silent
        self.judge_gathered()
        try:
            with self._lock:
                self._keep(self.engine.tick(self.clock()))
        except EngineLost:
            self._restart()  # silence is judged again at the next tick

    def save(self) -> None:
        """Save the engine's state, with nothing gathered left unjudged and every alarm change
        it holds recorded: the snapshot claims no reading that was not judged, and a restart
        from it (which never reports those changes again) loses no alarm."""
        self.judge_gathered()
        try:
            with self._lock:  # no judgement between the snapshot and the changes it covers
                blob = self.engine.snapshot()
                pending = self._take()
        except EngineLost:
            self._restart()  # from the last saved state: nothing newer is claimed
            return
        if pending:
            try:
                self.store.record_alarms(pending)
            except BaseException:
                with self._pending_lock:  # back in front: recorded by the next flush or save
                    self._pending[:0] = pending
                raise
            self._recorded(pending)
        self.store.save_detector_state(STATE_NAME, blob, datetime.now(UTC))

    def _recorded(self, changes: list[Alarm]) -> None:
        self.alarms_recorded += len(changes)
        if self.on_alarms is not None:
            self.on_alarms()

    async def run(self, stop: asyncio.Event) -> None:
        """Judge what is handed over, write alarm changes as they come, judge silence, save
        the state; until *stop*, then judge what is gathered before the final save."""
        last_tick = last_save = last_refresh = time.monotonic()
        every = self.settings.detection.state_save_s
        self._loop, self._news = asyncio.get_running_loop(), asyncio.Event()
        self.start()
        try:
            while not stop.is_set():
                await wait_any(stop, self._news, timeout=FLUSH_S)
                self._news.clear()
                moment = time.monotonic()
                if stop.is_set():
                    await asyncio.to_thread(self.stop)
                if moment - last_tick >= TICK_S:
                    last_tick = moment
                    await asyncio.to_thread(self._tick)
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
        finally:
            with self._ready:  # cancelled: let the worker end (what it holds is in the store)
                self._stopping = True
                self._ready.notify_all()

    async def _flush(self, stop: asyncio.Event) -> None:
        pending = self._take()
        if pending:
            await until_done(self.store.record_alarms, pending, stop=stop, what="alarm write")
            self._recorded(pending)
