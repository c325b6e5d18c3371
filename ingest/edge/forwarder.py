"""Drains the spool to the broker, oldest first, deleting rows only after their PUBACK.

A cursor (the last spooled row id handed to paho) walks the spool; each message is one
station's readings as a JSON array. Up to ``publish_window`` messages await their PUBACK at a
time, so a backlog drains at network speed rather than one round trip per message. When the
process restarts the cursor starts from zero: whatever was not acknowledged is sent again (the
central store is idempotent on ``(station_id, time)``, so a resend is harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time

from ingest.edge.backoff import Backoff
from ingest.edge.spool import Spool, SpooledRow
from ingest.edge.uplink import Uplink, station_topic

log = logging.getLogger(__name__)

_TAKE_MAX = 20_000  # rows per read of the spool
_COALESCE_S = 0.02  # acknowledged rows are deleted together, one transaction per burst


class Forwarder:
    """Spool -> MQTT with at-least-once delivery."""

    def __init__(self, spool: Spool, uplink: Uplink, batch: int, window: int) -> None:
        self._spool = spool
        self._uplink = uplink
        self._batch = batch
        self._window = window
        self._cursor = 0
        self._inflight: dict[int, list[int]] = {}
        self._acked: list[int] = []
        self._wake = asyncio.Event()
        self._ack_event = asyncio.Event()
        self._retry = Backoff(1.0, 60.0)
        self._retry_at = 0.0
        self.published = 0  # readings handed to paho (resends included)
        self.acknowledged = 0  # readings whose message got a PUBACK

    def notify(self) -> None:
        """Something changed: new rows, a PUBACK, a connection."""
        self._wake.set()

    def on_ack(self, mid: int, failed: bool) -> None:
        ids = self._inflight.pop(mid, None)
        if ids is None:
            return  # a status message
        if failed:
            # the broker refused it (e.g. not authorised): keep the rows, send them again later
            self._cursor = min(self._cursor, ids[0] - 1)
            self._retry_at = time.monotonic() + self._retry.next()
            log.error("broker refused a message of %d reading(s); they stay spooled", len(ids))
        else:
            self._retry.reset()
            self._acked.extend(ids)
            self.acknowledged += len(ids)
            self._ack_event.set()
        self._wake.set()

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def _blocked(self) -> float | None:
        """Seconds to wait before sending more, or None when sending is possible now."""
        if not self._uplink.connected.is_set():
            return 1.0
        if len(self._inflight) >= self._window:
            return 1.0
        wait = self._retry_at - time.monotonic()
        return wait if wait > 0 else None

    async def _sleep(self, timeout: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def _send(self, rows: list[SpooledRow]) -> None:
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
            payload = "[" + ",".join(row.payload for row in chunk) + "]"
            topic = station_topic(self._uplink.prefix, chunk[0].station_id, "dose")
            mid = self._uplink.publish(topic, payload)
            self._inflight[mid] = [row.id for row in chunk]
            self.published += len(chunk)
        self._cursor = rows[-1].id

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
                room = self._window - len(self._inflight)
                rows = self._spool.take(self._cursor, min(self._batch * room, _TAKE_MAX))
                if not rows:
                    await self._sleep(1.0)
                    continue
                self._send(rows)
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
                room = self._window - len(self._inflight)
                rows = self._spool.take(self._cursor, min(self._batch * room, _TAKE_MAX))
                if rows:
                    self._send(rows)
                    continue
                if not self._inflight:
                    break
            await self._sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        self._flush()
