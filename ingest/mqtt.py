"""Central MQTT ingest: the broker's messages into the store, acknowledged only once committed.

paho-mqtt runs with ``manual_ack``: a QoS 1 message is acknowledged (PUBACK) after the batch
holding it is committed, so a crash at any moment leaves every uncommitted message with the
broker, which redelivers it on reconnection (persistent session, ``clean_start`` false). The
store is idempotent on ``(station_id, time)``, so a redelivered reading is a no-op.

Memory is bounded by MQTT flow control: the broker is to send at most
``ingest.receive_maximum`` unacknowledged messages, so while the database is away the backlog
waits in the broker. Batches take at most half that window, so the next batch arrives while
the current one is being written. Mosquitto 2.0 keeps that promise only until the first
PUBACK (each one lets a whole window more through), so the inbox also bounds itself: while it
holds a window of messages or ``INBOX_BYTES``, paho's network thread waits for room, and TCP
holds the rest in the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.exc import InterfaceError, OperationalError

from ingest.broker import mqtt_client
from ingest.links import EDGE_PROPERTY, Links
from ingest.payloads import Context, Decoded, decode_message
from ingest.stations import StationDirectory
from radmon.config import Settings
from radmon.models import DeadLetter, ReadingRow
from radmon.runtime import OnStored, hand_over, until_done
from radmon.store import Store

log = logging.getLogger("radmon.ingest.mqtt")

SOURCE = "mqtt"
_POLL_S = 0.005  # how often a filling batch is looked at
_FIRST_BYTES_PER_READING = 150  # a reading with its optional fields, until measured
INBOX_BYTES = 64 * 1024 * 1024  # payloads received and not yet taken into a batch, at most
BATCH_BYTES = 8 * 1024 * 1024  # payloads of one batch, at most, whatever a reading takes


@dataclass
class IngestCounters:
    """What the ingest has done since it started (exposed for monitoring)."""

    messages: int = 0  # dose messages (statuses are not counted)
    readings_stored: int = 0  # readings committed, including redelivered ones
    readings_new: int = 0
    rejected: int = 0
    batches: int = 0
    connected: bool = False
    connects: int = 0
    last_commit_at: datetime | None = None


@dataclass(slots=True)
class _Received:
    generation: int  # which connection delivered it: a packet id means nothing on another
    message: paho.MQTTMessage
    status: bool = False  # a status topic's: taken on arrival, acknowledged in its turn


def dose_topic(settings: Settings) -> str:
    """The subscription: every station's dose topic, shared among workers when configured."""
    topic = f"{settings.mqtt.topic_prefix}/+/dose"
    group = settings.mqtt.shared_group
    return f"$share/{group}/{topic}" if group else topic


def station_of_topic(topic: str, prefix: str) -> str | None:
    """``{prefix}/{station_id}/dose`` → station_id."""
    head, _, rest = topic.partition(prefix + "/")
    station_id, _, tail = rest.rpartition("/")
    if head or tail != "dose" or not station_id or "/" in station_id:
        return None
    return station_id


class MqttIngest:
    """Subscribes to the dose topics and writes what arrives, in batches, into *store*."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        on_stored: OnStored | None = None,
        on_ahead: OnStored | None = None,
    ) -> None:
        self.store = store
        self.on_stored = on_stored  # the detectors judge each committed chunk
        self.on_ahead = on_ahead  # and hear of readings refused for a time ahead of the clock
        self.settings = settings
        self.counters = IngestCounters()
        self.stations = StationDirectory(store.stations, settings.ingest.station_refresh_s)
        self.links = Links(settings.mqtt.topic_prefix)
        self._max_batch_messages = max(1, settings.ingest.receive_maximum // 2)
        self._generation = 0
        # a batch holds about batch_size readings, judged by the payload bytes a reading has
        # taken so far (a bare reading is some 80 bytes of JSON, one with every field 250)
        self._bytes_per_reading = float(_FIRST_BYTES_PER_READING)
        self._inbox: deque[_Received] = deque()
        self._inbox_bytes = 0
        self._room = threading.Condition()  # the inbox has room again, or the ingest stops
        self._closing = False
        self._arrived = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client = self._make_client()

    # -- the broker side (paho's network thread) --------------------------------------------

    def _make_client(self) -> paho.Client:
        mqtt = self.settings.mqtt
        client = mqtt_client(mqtt, mqtt.client_id, max_backoff_s=30, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: paho.Client, _u: object, flags, reason, _props) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        self._generation += 1
        self.counters.connected = True
        self.counters.connects += 1
        log.info(
            "connected to %s:%d (session %s)",
            self.settings.mqtt.host,
            self.settings.mqtt.port,
            "resumed" if flags.session_present else "new",
        )
        client.subscribe([(dose_topic(self.settings), 1), *((t, 1) for t in self.links.topics())])

    def _on_disconnect(self, _c: paho.Client, _u: object, _flags, reason, _props) -> None:
        self.counters.connected = False
        if reason.is_failure:
            log.warning("lost the broker (%s); reconnecting with backoff", reason)

    def _on_message(self, _c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        # Runs in paho's network thread, which waits here while the inbox is full (paho's
        # ack() from the event loop takes no lock this callback holds). The event loop is
        # woken only when the inbox was empty, not once per message (a wake-up is a system
        # call).
        assert self._loop is not None
        status = self.links.is_status(message.topic)
        if status:
            self._heard_status(message)
        size = len(message.payload)
        window = self.settings.ingest.receive_maximum
        with self._room:
            while (
                self._inbox
                and (len(self._inbox) >= window or self._inbox_bytes + size > INBOX_BYTES)
                and not self._closing
            ):
                self._room.wait()
            was_empty = not self._inbox
            self._inbox.append(_Received(self._generation, message, status))
            self._inbox_bytes += size
        if was_empty:
            self._loop.call_soon_threadsafe(self._arrived.set)

    def _heard_status(self, message: paho.MQTTMessage) -> None:
        # A status is state, retained by the broker and heard again on every subscribe: it
        # is taken on arrival, and acknowledged with the batch it arrived in (MQTT wants the
        # acknowledgements in the order of receipt); it holds no reading.
        edges = getattr(message.properties, "UserProperty", None) or []
        edge = next((value for key, value in edges if key == EDGE_PROPERTY), None)
        if not self.links.heard(message.topic, message.payload, edge, datetime.now(UTC)):
            log.warning("ignored a status message on %s: %r", message.topic, message.payload[:40])

    # -- the store side (the event loop) ----------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Ingest until *stop* is set; the batch being written when it is set is finished."""
        self._loop = asyncio.get_running_loop()
        self._closing = False
        mqtt = self.settings.mqtt
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = mqtt.session_expiry_s
        props.ReceiveMaximum = self.settings.ingest.receive_maximum
        self._client.connect_async(
            mqtt.host, mqtt.port, keepalive=mqtt.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()
        # Two stages: the next batch is gathered and decoded while this one is written, so
        # Python works while PostgreSQL does (the half-window leaves room for both).
        decoded: asyncio.Queue[tuple[list[_Received], Decoded] | None] = asyncio.Queue(1)
        gathering = asyncio.create_task(self._gather(stop, decoded))
        try:
            while (item := await _next_or_failure(decoded, gathering)) is not None:
                await self._commit(*item, stop)
        finally:
            gathering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gathering
            with self._room:  # a network thread waiting for room is let go
                self._closing = True
                self._room.notify_all()
            self._client.disconnect()
            await asyncio.to_thread(self._client.loop_stop)

    async def _gather(
        self, stop: asyncio.Event, out: asyncio.Queue[tuple[list[_Received], Decoded] | None]
    ) -> None:
        while not stop.is_set():
            batch = await self._next_batch(stop)
            if batch:
                await out.put((batch, await asyncio.to_thread(self._decode, batch)))
        await out.put(None)

    async def _next_batch(self, stop: asyncio.Event) -> list[_Received]:
        """Wait for a first message, then gather until the batch is full or old enough."""
        while not self._inbox:
            self._arrived.clear()
            if self._inbox:
                break
            if await _first_of(self._arrived, stop) is stop:
                return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.ingest.batch_wait_s
        while not self._full() and (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(left, _POLL_S))
        batch, size = [], 0
        with self._room:
            most = self._max_bytes()
            while self._inbox and len(batch) < self._max_batch_messages and size < most:
                item = self._inbox.popleft()
                batch.append(item)
                size += len(item.message.payload)
            self._inbox_bytes -= size
            self._room.notify_all()
        return batch

    def _max_bytes(self) -> float:
        return min(self.settings.ingest.batch_size * self._bytes_per_reading, BATCH_BYTES)

    def _full(self) -> bool:
        return (
            len(self._inbox) >= self._max_batch_messages or self._inbox_bytes >= self._max_bytes()
        )

    async def _commit(self, batch: list[_Received], decoded: Decoded, stop: asyncio.Event) -> None:
        store = self.store
        size = self.settings.ingest.batch_size
        new = 0
        for start in range(0, len(decoded.readings), size):
            chunk = decoded.readings[start : start + size]
            try:
                added = await until_done(store.add_readings, chunk, stop=stop, what="write")
            except (OperationalError, InterfaceError):
                raise  # stopping while the database is away: leave the batch to the broker
            except Exception as exc:  # the store refuses this data: keep it, do not loop on it
                log.exception("the store refused %d readings; dead-lettering them", len(chunk))
                decoded.letters.extend(_refused(chunk, exc))
                continue
            new += len(added)
            await hand_over(self.on_stored, added)
        await until_done(store.keep_dead_letters, decoded.letters, stop=stop, what="dead letters")
        await hand_over(self.on_ahead, decoded.ahead)
        self._ack(batch)
        counters = self.counters
        counters.messages += sum(not item.status for item in batch)  # dose messages
        counters.readings_stored += len(decoded.readings)
        counters.readings_new += new
        counters.rejected += len(decoded.letters)
        counters.batches += 1
        counters.last_commit_at = datetime.now(UTC)

    def _decode(self, batch: list[_Received]) -> Decoded:
        prefix = self.settings.mqtt.topic_prefix
        now = datetime.now(UTC)
        out = Decoded()
        for item in batch:
            if item.status:
                continue
            topic = item.message.topic
            ctx = Context(SOURCE, topic, now, self.settings.ingest)
            station_id = station_of_topic(topic, prefix) or topic
            out.extend(decode_message(item.message.payload, station_id, self.stations, ctx))
        if out.readings:
            size = sum(len(item.message.payload) for item in batch if not item.status)
            self._bytes_per_reading = size / len(out.readings)
        return out

    def _ack(self, batch: list[_Received]) -> None:
        # A message from an earlier connection is not acknowledged here: its packet id may
        # now belong to another message. The broker redelivers it; storing it is a no-op.
        for item in batch:
            if item.generation == self._generation and item.message.qos > 0:
                self._client.ack(item.message.mid, item.message.qos)


def _refused(readings: list[ReadingRow], exc: Exception) -> list[DeadLetter]:
    now = datetime.now(UTC)
    reason = f"the store refused the reading: {type(exc).__name__}: {exc}"[:2000]
    return [
        DeadLetter(
            received_at=now,
            source=SOURCE,
            origin="store",
            station_id=r.station_id,
            reason=reason,
            payload=r.model().model_dump_json(exclude_none=True),
        )
        for r in readings
    ]


async def _next_or_failure(queue: asyncio.Queue[Any], producer: asyncio.Task[None]) -> Any:
    """The next item of *queue*; if its *producer* fails first, its exception: a gatherer
    that died must stop the ingest loudly, not leave it waiting for batches forever."""
    getter = asyncio.ensure_future(queue.get())
    try:
        await asyncio.wait({getter, producer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not getter.done():
            getter.cancel()
    if getter.done() and not getter.cancelled():
        return getter.result()
    producer.result()  # raises what stopped it
    return None


async def _first_of(*events: asyncio.Event) -> asyncio.Event:
    """Wait until one of *events* is set; returns it."""
    waiters = {asyncio.ensure_future(e.wait()): e for e in events}
    try:
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return waiters[done.pop()]
