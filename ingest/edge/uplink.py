"""The MQTT connection of an edge (paho-mqtt 2.x, MQTT 5, QoS 1).

paho runs its network thread (``loop_start``) and reconnects on its own with a doubling delay
(1 s up to 60 s), forever. Every callback is handed to the asyncio loop with
``call_soon_threadsafe``, so the rest of the edge runs on one thread. paho keeps unacknowledged
QoS 1 messages in memory across reconnects and sends them again (DUP) after the next CONNACK; the
spool holds the same readings on disk for the case paho cannot cover, a restart of the process.

Status topics (one will per connection, so the will belongs to the edge, not to a station):

- ``{prefix}/edge/{edge.id}/status``: ``online`` after each CONNACK; the will is ``offline``;
  a graceful stop publishes ``offline`` itself. Retained, QoS 1.
- ``{prefix}/{station_id}/status``: ``online``/``offline`` as the probe answers or stops
  answering, published by the edge (again after each reconnect, and ``offline`` for every
  station on a graceful stop). Retained, QoS 1, with the MQTT 5 user property ``edge`` naming
  the edge. After a crash a station's retained status is the last one published: a consumer
  takes a station as online only while its edge is online (``ingest/links.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.broker import mqtt_client
from ingest.edge.backoff import Backoff
from ingest.links import EDGE_PROPERTY, OFFLINE, ONLINE
from radmon.config import MqttSettings

log = logging.getLogger(__name__)


def edge_status_topic(prefix: str, edge_id: str) -> str:
    return f"{prefix}/edge/{edge_id}/status"


def station_topic(prefix: str, station_id: str, kind: str) -> str:
    return f"{prefix}/{station_id}/{kind}"


class Uplink:
    """One paho client; publishes from the loop thread, acknowledgements delivered to the loop."""

    def __init__(
        self,
        mqtt: MqttSettings,
        edge_id: str,
        loop: asyncio.AbstractEventLoop,
        inflight: int,
    ) -> None:
        self._mqtt = mqtt
        self._loop = loop
        self.prefix = mqtt.topic_prefix
        self.edge_topic = edge_status_topic(mqtt.topic_prefix, edge_id)
        self._station_props = Properties(PacketTypes.PUBLISH)
        self._station_props.UserProperty = (EDGE_PROPERTY, edge_id)
        self.connected = asyncio.Event()
        self.on_ack: Callable[[int, bool], None] = lambda mid, failed: None
        self.on_connected: Callable[[], None] = lambda: None
        self._statuses: dict[str, str] = {}
        # status messages in flight (mid -> station), and a backoff for each one refused
        self._status_mids: dict[int, str] = {}
        self._status_retry: dict[str, Backoff] = {}
        self._status_waiting: set[str] = set()  # refused, its backoff not over yet
        self._closing = False
        self._unreachable_told = False
        client = mqtt_client(mqtt, edge_id, max_backoff_s=60)
        client.max_inflight_messages_set(inflight)
        client.will_set(self.edge_topic, OFFLINE, qos=1, retain=True)
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_publish = self._paho_publish
        client.on_connect_fail = self._paho_connect_fail
        self._client = client

    # -- paho thread -> loop -------------------------------------------------------------------

    def _to_loop(self, callback: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: the process is stopping
            self._loop.call_soon_threadsafe(callback, *args)

    def _paho_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning(
                "broker %s:%s refused the connection: %s",
                self._mqtt.host,
                self._mqtt.port,
                reason_code,
            )
            return
        self._to_loop(self._connected)

    def _paho_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._to_loop(self._disconnected, str(reason_code))

    def _paho_connect_fail(self, client, userdata) -> None:
        self._to_loop(self._unreachable)

    def _paho_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._to_loop(self._published, mid, bool(reason_code.is_failure))

    # -- loop thread ---------------------------------------------------------------------------

    def _unreachable(self) -> None:
        # paho retries on its own; say once per outage that it does (a mistyped host or port
        # would otherwise leave readings piling up in the spool without a word)
        if not self._unreachable_told and not self._closing:
            self._unreachable_told = True
            log.warning(
                "cannot reach broker %s:%s; readings stay spooled, retrying",
                self._mqtt.host,
                self._mqtt.port,
            )

    def _published(self, mid: int, failed: bool) -> None:
        station_id = self._status_mids.pop(mid, None)
        if station_id is None:
            self.on_ack(mid, failed)
        elif failed:  # e.g. not authorised yet: send the station's state again after a while
            backoff = self._status_retry.setdefault(station_id, Backoff(1.0, 60.0))
            delay = backoff.next()
            log.warning("broker refused the status of %s; again in %.0f s", station_id, delay)
            self._status_waiting.add(station_id)
            self._loop.call_later(delay, self._resend_status, station_id)
        else:
            self._status_retry.pop(station_id, None)

    def _resend_status(self, station_id: str) -> None:
        self._status_waiting.discard(station_id)
        # not connected now: the next connection sends it with the rest
        if self.connected.is_set() and not self._closing and station_id in self._statuses:
            self._publish_status(station_id, self._statuses[station_id])

    def _connected(self) -> None:
        self._unreachable_told = False
        self._status_mids.clear()  # a new session: every state is sent again below
        log.info("connected to broker %s:%s", self._mqtt.host, self._mqtt.port)
        self.connected.set()
        self._client.publish(self.edge_topic, ONLINE, qos=1, retain=True)
        for station_id, state in self._statuses.items():
            if station_id not in self._status_waiting:  # refused: its own backoff sends it
                self._publish_status(station_id, state)
        self.on_connected()

    def _disconnected(self, reason: str) -> None:
        if self.connected.is_set() and not self._closing:
            log.warning(
                "lost the broker %s:%s (%s); reconnecting", self._mqtt.host, self._mqtt.port, reason
            )
        self.connected.clear()

    def _publish_status(self, station_id: str, state: str) -> paho.MQTTMessageInfo:
        topic = station_topic(self.prefix, station_id, "status")
        info = self._client.publish(
            topic, state, qos=1, retain=True, properties=self._station_props
        )
        self._status_mids[info.mid] = station_id
        return info

    def start(self) -> None:
        """Connect in the background; paho retries until the broker answers."""
        self._client.connect_async(
            self._mqtt.host,
            self._mqtt.port,
            keepalive=self._mqtt.keepalive_s,
            clean_start=True,
        )
        self._client.loop_start()

    def publish(self, topic: str, payload: str) -> int:
        """Queue one QoS 1 message; its mid comes back through ``on_ack`` at PUBACK."""
        return self._client.publish(topic, payload, qos=1).mid

    def set_status(self, station_id: str, online: bool) -> None:
        """Record a station's state; published (retained) now if connected, else on connect."""
        state = ONLINE if online else OFFLINE
        if self._statuses.get(station_id) == state:
            return
        self._statuses[station_id] = state
        log.info("station %s is %s", station_id, state)
        if self.connected.is_set():
            self._publish_status(station_id, state)

    async def close(self, timeout: float) -> None:
        """Publish ``offline`` for the stations and the edge, then disconnect (no will)."""
        infos: list[paho.MQTTMessageInfo] = []
        self._closing = True
        if self.connected.is_set():
            for station_id in self._statuses:
                infos.append(self._publish_status(station_id, OFFLINE))
            infos.append(self._client.publish(self.edge_topic, OFFLINE, qos=1, retain=True))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not all(i.is_published() for i in infos):
                await asyncio.sleep(0.02)
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self.connected.clear()
