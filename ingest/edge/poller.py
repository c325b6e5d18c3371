"""One asyncio task per probe: poll at its interval, stamp the time, report online/offline.

The probe has no clock: the edge stamps each reading with aware UTC time when the poll starts.
A failed poll (no answer, timeout, exception response, broken serial line) closes the
connection and retries after an exponential backoff with jitter; after ``offline_after``
consecutive failures the station is reported offline, and online again at the first answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ingest.edge.backoff import Backoff
from ingest.edge.base import Driver, ProbeError, Sample
from ingest.edge.convert import to_payload
from radmon.config import ProbeSettings
from radmon.errors import InputError

log = logging.getLogger(__name__)

Sink = Callable[[str, datetime, dict[str, Any]], None]
StatusSink = Callable[[str, bool], None]
_REPEAT_LOG_S = 300.0


class Poller:
    """Polls one probe until stopped; counts what it could not send, and says why."""

    def __init__(
        self,
        probe: ProbeSettings,
        driver: Driver,
        sensitivity: float | None,
        sink: Sink,
        status: StatusSink,
    ) -> None:
        self.probe = probe
        self.station_id = probe.station_id
        self._driver = driver
        self._sensitivity = sensitivity
        self._sink = sink
        self._status = status
        self._backoff = Backoff(probe.backoff_initial_s, probe.backoff_max_s)
        self._guard = probe.timeout_s * 2 + 1.0  # pymodbus and pyserial time out first
        self.failures = 0  # consecutive failed polls
        self.online: bool | None = None
        self.readings = 0
        self.faulted = 0  # polls whose status word flagged a fault: not sent as a dose
        self.rejected = 0  # impossible values
        self._last_log: tuple[str, float] = ("", 0.0)

    def _log_once(self, level: int, message: str) -> None:
        """Log *message*, but not the same one again within a few minutes."""
        now = time.monotonic()
        if message != self._last_log[0] or now - self._last_log[1] > _REPEAT_LOG_S:
            log.log(level, "station %s: %s", self.station_id, message)
            self._last_log = (message, now)

    async def _poll(self, connected: bool) -> tuple[datetime, Sample]:
        if not connected:
            await asyncio.wait_for(self._driver.connect(), self._guard)
        moment = datetime.now(UTC)
        sample = await asyncio.wait_for(self._driver.read(), self._guard)
        return moment, sample

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        reason = str(exc) or type(exc).__name__
        if self.failures >= self.probe.offline_after and self.online is not False:
            self.online = False
            self._status(self.station_id, False)
        self._log_once(logging.WARNING, f"poll failed ({self.failures} in a row): {reason}")

    def _answered(self, moment: datetime, sample: Sample) -> None:
        if self.online is not True:
            self.online = True
            self._status(self.station_id, True)
            self._last_log = ("", 0.0)
        self.failures = 0
        self._backoff.reset()
        if sample.faults:
            self.faulted += 1
            self._log_once(
                logging.WARNING,
                f"status word {sample.status} flags {', '.join(sample.faults)}: dose not sent",
            )
            return
        try:
            payload = to_payload(self.station_id, moment, sample, self._sensitivity)
        except InputError as exc:
            self.rejected += 1
            self._log_once(logging.WARNING, f"reading refused: {exc}")
            return
        self._sink(self.station_id, moment, payload)
        self.readings += 1

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        connected = False
        next_poll = loop.time()
        try:
            while not stop.is_set():
                try:
                    moment, sample = await self._poll(connected)
                    connected = True
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a driver bug must not stop the other probes
                    if not isinstance(exc, ProbeError | TimeoutError | OSError):
                        log.exception("station %s: unexpected error while polling", self.station_id)
                    connected = False
                    await self._close()
                    self._failed(exc)
                    await _wait(stop, self._backoff.next())
                    next_poll = loop.time()
                    continue
                self._answered(moment, sample)
                next_poll += self.probe.interval_s
                now = loop.time()
                if next_poll < now:  # a slow answer or a suspended machine: skip missed ticks
                    next_poll = now
                await _wait(stop, next_poll - now)
        finally:
            await self._close()

    async def _close(self) -> None:
        try:
            await asyncio.wait_for(self._driver.close(), self._guard)
        except Exception:  # closing a broken connection may fail; it is gone either way
            log.debug("station %s: close failed", self.station_id, exc_info=True)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep *seconds*, or less if *stop* is set."""
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
