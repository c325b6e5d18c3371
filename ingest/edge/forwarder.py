"""Drains the spool to the broker, oldest first, deleting rows only after their PUBACK.

A cursor (the last spooled row id handed to paho) walks the spool; each message is one
station's readings as a JSON array. Up to ``publish_window`` messages await their PUBACK at a
time, so a backlog drains at network speed rather than one round trip per message. When the
process restarts the cursor starts from zero: whatever was not acknowledged is sent again (the
central store is idempotent on ``(station_id, time)``, so a resend is harmless).

A message the broker refuses (a PUBACK with a failure code: typically a station missing from
the broker's ACL) holds back that station alone. Its rows stay spooled, the cursor goes on for
the others, and after a backoff of its own the station catches up: its spooled rows up to the
cursor are sent again oldest first, and only then does the cursor carry it again, so each
station still arrives in time order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from dataclasses import dataclass, field

from ingest.edge.backoff import Backoff
from ingest.edge.spool import Spool, SpooledRow
from ingest.edge.uplink import Uplink, station_topic

log = logging.getLogger(__name__)

_TAKE_MAX = 20_000  # rows per read of the spool
_COALESCE_S = 0.02  # acknowledged rows are deleted together, one transaction per burst


@dataclass
class _Held:
    """A station whose message the broker refused, until it has caught up with the cursor."""

    backoff: Backoff = field(default_factory=lambda: Backoff(1.0, 60.0))
    retry_at: float = 0.0
    after: int = 0  # its rows after this id and up to the cursor are sent by the catch-up


class Forwarder:
    """Spool -> MQTT with at-least-once delivery."""

    def __init__(self, spool: Spool, uplink: Uplink, batch: int, window: int) -> None:
        self._spool = spool
        self._uplink = uplink
        self._batch = batch
        self._window = window
        self._cursor = 0
        self._inflight: dict[int, tuple[str, list[int]]] = {}
        self._held: dict[str, _Held] = {}
        self._acked: list[int] = []
        self._wake = asyncio.Event()
        self._ack_event = asyncio.Event()
        self.published = 0  # readings handed to paho (resends included)
        self.acknowledged = 0  # readings whose message got a PUBACK

    def notify(self) -> None:
        """Something changed: new rows, a PUBACK, a connection."""
        self._wake.set()

    def on_ack(self, mid: int, failed: bool) -> None:
        sent = self._inflight.pop(mid, None)
        if sent is None:
            return  # a status message
        station, ids = sent
        if failed:
            self._hold(station, len(ids))
        else:
            self._acked.extend(ids)
            self.acknowledged += len(ids)
            self._ack_event.set()
        self._wake.set()

    def _hold(self, station: str, readings: int) -> None:
        """The broker refused a message of *station* (e.g. not authorised): its rows stay
        spooled and wait for a backoff of their own, from the oldest; the others go on."""
        held = self._held.setdefault(station, _Held())
        now = time.monotonic()
        if held.retry_at > now:
            return  # another message of the same round: one backoff step per round
        held.retry_at = now + held.backoff.next()
        held.after = 0
        log.error(
            "broker refused a message of %d reading(s) of %s; its readings stay spooled and are "
            "sent again in %.1f s",
            readings,
            station,
            held.retry_at - now,
        )

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def _blocked(self) -> float | None:
        """Seconds to wait before sending more, or None when sending is possible now."""
        if not self._uplink.connected.is_set():
            return 1.0
        if len(self._inflight) >= self._window:
            return 1.0
        return None

    async def _sleep(self, timeout: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def _send(self, rows: list[SpooledRow]) -> None:
        """Publish *rows* as one message per station and ``publish_batch`` readings."""
        by_station: dict[str, list[SpooledRow]] = {}
        for row in rows:
            by_station.setdefault(row.station_id, []).append(row)
        chunks = [
            group[i : i + self._batch]
            for group in by_station.values()
            for i in range(0, len(group), self._batch)
        ]
        chunks.sort(key=lambda chunk: chunk[0].id)
        for chunk in chunks:
            station = chunk[0].station_id
            payload = "[" + ",".join(row.payload for row in chunk) + "]"
            mid = self._uplink.publish(station_topic(self._uplink.prefix, station, "dose"), payload)
            self._inflight[mid] = (station, [row.id for row in chunk])
            self.published += len(chunk)

    def _send_next(self) -> bool:
        """Send what may go now, caught-up stations first; False when nothing could."""
        room = self._window - len(self._inflight)
        limit = min(self._batch * room, _TAKE_MAX)
        if self._catch_up(limit):
            return True
        rows = self._spool.take(self._cursor, limit)
        if not rows:
            return False
        self._cursor = rows[-1].id
        # a held station's rows wait for its catch-up, which reads them again from the spool
        self._send([row for row in rows if row.station_id not in self._held])
        return True

    def _catch_up(self, limit: int) -> bool:
        """Resend the spooled rows of one held station whose backoff is over, oldest first;
        once none is left up to the cursor, the cursor carries it again."""
        now = time.monotonic()
        for station, held in list(self._held.items()):
            if held.retry_at > now:
                continue
            rows = self._spool.take_station(station, held.after, self._cursor, limit)
            if rows:
                held.after = rows[-1].id
                self._send(rows)
                return True
            if all(sent != station for sent, _ in self._inflight.values()):
                del self._held[station]  # every row went and was acknowledged: it is back
        return False

    def _next_retry(self) -> float:
        """Seconds until a held station may be tried again (1 s when none waits for that)."""
        now = time.monotonic()
        return min((h.retry_at - now for h in self._held.values() if h.retry_at > now), default=1.0)

    async def run(self, stop: asyncio.Event) -> None:
        """Send until *stop*; then ``finish`` waits for the last acknowledgements."""
        flusher = asyncio.create_task(self._flush_loop(stop))
        try:
            while not stop.is_set():
                wait = self._blocked()
                if wait is not None:
                    await self._sleep(wait)
                    continue
                # a read large enough that interleaved stations still fill whole messages
                if not self._send_next():
                    await self._sleep(min(1.0, self._next_retry()))
                    continue
                await asyncio.sleep(0)  # let acknowledgements and pollers in
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            self._flush()

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._ack_event.wait()
            self._ack_event.clear()
            await asyncio.sleep(_COALESCE_S)
            self._flush()

    def _flush(self) -> None:
        ids, self._acked = self._acked, []
        if not ids:
            return
        try:
            self._spool.delete(ids)
        except sqlite3.Error as exc:  # they stay spooled and go out again: a harmless resend
            log.error("cannot delete %d acknowledged reading(s) from the spool: %s", len(ids), exc)

    async def finish(self, timeout: float) -> None:
        """On stop: send what is still spooled and wait for PUBACKs, both bounded by *timeout*;
        then delete what was acknowledged. The rest goes out at the next start."""
        deadline = time.monotonic() + timeout
        while self._uplink.connected.is_set() and time.monotonic() < deadline:
            if self._blocked() is None:
                if self._send_next():
                    continue
                if not self._inflight:
                    break
            await self._sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        self._flush()
