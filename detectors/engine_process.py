"""The streaming engine in a process of its own: what ``radmon serve`` runs.

The engine is Python and NumPy that holds the GIL while it works. Inside serve's process it
took a third of that process's time, and the ingest's writers waited behind it for the GIL at
every round trip to PostgreSQL (docs/benchmarks.md). In a child process it has a core of its
own; the caller's thread waits on the pipe without the GIL.

:class:`EngineProcess` offers the part of :class:`Engine` that :mod:`detectors.live` uses. Each
call carries the caller's clock, so a demo's simulated time reaches the engine too. If the child
dies, or hangs past ``ANSWER_WITHIN_S``, every call raises :class:`EngineLost`: its state is
gone, and the caller starts a new engine from the saved state and the stored readings.
"""

from __future__ import annotations

import atexit
import multiprocessing
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from detectors.engine import Engine, Judged, reading_columns
from radmon.models import Alarm, Station

# forkserver: a child is a fork of a small server that has imported the engine already (some
# 20 ms to start, against a second for spawn), never of serve with its threads and sockets
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["detectors.engine"])
# what the parent may ask of the engine: methods called, attributes read
_CALLS = frozenset(("feed_columns", "refused_ahead", "tick", "snapshot", "restore", "add_stations"))
_READS = frozenset(("now", "stats"))
_STOP_S = 10.0
# A call the engine has not answered in this long will not be answered: the process is hung
# (stopped, swapping, looping). The biggest call, a feed of 25,000 readings, takes a fraction
# of a second; meanwhile the ingest's writers wait, so a hang must not last for ever.
ANSWER_WITHIN_S = 60.0


class EngineLost(RuntimeError):
    """The engine's process has died: what it held is gone."""


class EngineProcess:
    """An :class:`Engine` in a child process, called as if it were here."""

    def __init__(
        self,
        *args: Any,
        clock: Callable[[], float] = time.time,
        answer_within_s: float = ANSWER_WITHIN_S,
        **kwargs: Any,
    ):
        """*args* and *kwargs* as :class:`Engine` takes them. *clock* stays here: each call
        carries what it reads to the engine. A call not answered within *answer_within_s*
        ends the process and raises :class:`EngineLost`, as if it had died."""
        self.clock = clock
        self._answer_within_s = answer_within_s
        self._lock = threading.Lock()  # one request and its answer at a time
        self._conn, child_end = _CONTEXT.Pipe()
        self.process = _CONTEXT.Process(
            target=_serve,
            args=(child_end, args, kwargs),
            name="radmon-detection",
            daemon=True,  # never outlives serve
        )
        self.process.start()
        child_end.close()
        self._finalizer = weakref.finalize(self, _shut, self._conn, self.process)
        # at exit, multiprocessing terminates daemon children and joins them; this child
        # ignores SIGTERM, so it must be shut first, and atexit runs the last registered first
        atexit.register(self._finalizer)

    def feed(self, readings: Iterable[Judged]) -> list[Alarm]:
        return self.feed_columns(*reading_columns(readings))

    def feed_columns(
        self, t: np.ndarray, station_ids: Sequence[str], x: np.ndarray, precip: np.ndarray
    ) -> list[Alarm]:
        return self._call("feed_columns", t, list(station_ids), x, precip)

    def refused_ahead(self, readings: Iterable[Judged]) -> list[Alarm]:
        return self._call("refused_ahead", list(readings))

    def tick(self, now_s: float) -> list[Alarm]:
        return self._call("tick", now_s)

    def snapshot(self) -> bytes:
        return self._call("snapshot")

    def restore(self, blob: bytes) -> None:
        self._call("restore", blob)

    def add_stations(self, stations: Iterable[Station]) -> None:
        self._call("add_stations", list(stations))

    @property
    def now(self) -> int:
        return self._call("now")

    @property
    def stats(self) -> dict[str, int]:
        return self._call("stats")

    def close(self) -> None:
        """End the child (it has nothing to save: the caller saves snapshots)."""
        self._finalizer()
        atexit.unregister(self._finalizer)

    def _call(self, name: str, *args: Any) -> Any:
        with self._lock:
            try:
                self._conn.send((name, self.clock(), args))
                if not self._conn.poll(self._answer_within_s):
                    self.process.kill()
                    raise EngineLost(
                        f"the detection engine's process did not answer {name} within "
                        f"{self._answer_within_s:.0f} s; it was ended"
                    )
                ok, answer = self._conn.recv()
            except (EOFError, OSError) as exc:  # the child is gone, or going
                raise EngineLost(f"the detection engine's process has ended ({exc!r})") from exc
        if not ok:
            raise answer
        return answer


def _serve(conn: Connection, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """The child: answer requests until the parent closes the pipe."""
    # Ctrl-C reaches the whole process group, and a service manager's stop every process of
    # the service: the parent stops in its own order (its final save needs this engine), and
    # this process ends when the parent closes the pipe, or dies.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    now = [time.time()]
    engine = Engine(*args, clock=lambda: now[0], **kwargs)
    while True:
        try:
            name, now[0], args = conn.recv()
        except EOFError:
            return
        try:
            if name in _CALLS:
                answer = (True, getattr(engine, name)(*args))
            elif name in _READS:
                answer = (True, getattr(engine, name))
            else:
                answer = (False, ValueError(f"the engine has no call {name!r}"))
        except Exception as exc:  # the caller's error, raised there; the engine goes on
            answer = (False, exc)
        try:
            conn.send(answer)
        except Exception as exc:  # an answer that does not pickle: say so instead
            conn.send((False, RuntimeError(f"{name}: unsendable answer ({exc!r})")))


def _shut(conn: Connection, process: multiprocessing.process.BaseProcess) -> None:
    conn.close()  # the child reads EOF and returns
    process.join(_STOP_S)
    if process.is_alive():
        process.kill()
        process.join()
