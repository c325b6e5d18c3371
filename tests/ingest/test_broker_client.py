"""The ingest's paho client: a PUBLISH decoded as paho decodes it, acknowledged only by hand."""

from __future__ import annotations

import struct
import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.broker import LeanReceiver, mqtt_client
from radmon.config import MqttSettings
from tests.broker import Broker, publish_all


def _publish_packet(
    topic: bytes, mid: int, payload: bytes, *, qos: int = 1, flags: int = 0, props: bytes = b"\0"
) -> tuple[int, bytearray]:
    """(fixed header's first byte, the rest after the remaining length) of an MQTT 5 PUBLISH."""
    header = 0x30 | (qos << 1) | flags
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", mid)
    return header, bytearray(body + props + payload)


def _received(kind: type[paho.Client], header: int, packet: bytearray, manual_ack: bool = True):
    client = kind(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5, manual_ack=manual_ack)
    got: list[paho.MQTTMessage] = []
    client.on_message = lambda _c, _u, message: got.append(message)
    client._in_packet = {"command": header, "packet": bytearray(packet)}
    sent: list[int] = []
    client._send_puback = lambda mid: sent.append(mid) or paho.MQTT_ERR_SUCCESS
    assert client._handle_publish() == paho.MQTT_ERR_SUCCESS
    [message] = got
    return message, sent


def _fields(message: paho.MQTTMessage) -> tuple:
    return (message.topic, message.payload, message.mid, message.qos, message.dup, message.retain)


_USER_PROPERTY = b"\x0e\x26\x00\x04unit\x00\x05nSv/h"  # 14 bytes: User Property unit=nSv/h


@pytest.mark.parametrize(
    ("topic", "mid", "payload", "flags"),
    [
        (b"radmon/v1/QN001/dose", 1, b'{"time": 1, "dose_rate": 1, "unit": "nSv/h"}', 0),
        (b"radmon/v1/QN001/dose", 65535, b"[]", 0x08),  # dup
        (b"radmon/v1/Tr\xe1\xba\xa1m/dose", 300, b"", 0x01),  # UTF-8 topic, retain, no payload
        (b"", 7, b"x" * 70000, 0x09),
    ],
)
def test_a_publish_without_properties_is_what_paho_makes_of_it(
    topic: bytes, mid: int, payload: bytes, flags: int
) -> None:
    header, packet = _publish_packet(topic, mid, payload, flags=flags)
    lean, lean_acks = _received(LeanReceiver, header, packet)
    stock, stock_acks = _received(paho.Client, header, packet)
    assert _fields(lean) == _fields(stock)
    assert type(lean.payload) is type(stock.payload) is bytes
    assert lean.properties is None  # nothing was sent; paho's own would be an empty Properties
    assert lean_acks == stock_acks == []  # manual: acknowledged after the commit, not here
    assert lean.timestamp == pytest.approx(stock.timestamp, abs=5)


@pytest.mark.parametrize(
    ("qos", "props", "manual_ack"),
    [(1, _USER_PROPERTY, True), (0, b"\0", True), (1, b"\0", False)],
)
def test_anything_else_goes_through_paho(qos: int, props: bytes, manual_ack: bool) -> None:
    header, packet = _publish_packet(b"radmon/v1/QN001/dose", 9, b"{}", qos=qos, props=props)
    lean, lean_acks = _received(LeanReceiver, header, packet, manual_ack)
    stock, stock_acks = _received(paho.Client, header, packet, manual_ack)
    assert _fields(lean) == _fields(stock)
    assert lean_acks == stock_acks
    assert isinstance(lean.properties, Properties)
    assert lean.properties.json() == stock.properties.json()


def test_the_ingest_client_is_lean_and_the_others_are_not() -> None:
    assert LeanReceiver.usable()
    settings = MqttSettings()
    assert type(mqtt_client(settings, "central", max_backoff_s=1, manual_ack=True)) is LeanReceiver
    assert type(mqtt_client(settings, "edge", max_backoff_s=1)) is paho.Client


def test_unacknowledged_messages_come_back_to_the_persistent_session(broker: Broker) -> None:
    """Acknowledge half, drop the connection: the broker redelivers exactly the other half."""
    settings = MqttSettings(host=broker.host, port=broker.port)

    def session(messages: list[paho.MQTTMessage], count: int) -> LeanReceiver:
        client = mqtt_client(settings, "radmon-lean-test", max_backoff_s=1, manual_ack=True)
        assert isinstance(client, LeanReceiver)
        subscribed = threading.Event()
        client.on_message = lambda _c, _u, message: messages.append(message)
        client.on_subscribe = lambda *_: subscribed.set()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        props.ReceiveMaximum = 100
        client.connect(broker.host, broker.port, clean_start=False, properties=props)
        client.loop_start()
        client.subscribe("radmon/v1/+/dose", qos=1)
        assert subscribed.wait(10)
        deadline = time.monotonic() + 20
        while len(messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return client

    first: list[paho.MQTTMessage] = []
    client = session(first, 0)
    publish_all(broker, [(f"radmon/v1/QN{i:03d}/dose", b"%d" % i) for i in range(40)])
    deadline = time.monotonic() + 20
    while len(first) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(int(m.payload) for m in first) == list(range(40))
    for message in first[:20]:
        client.ack(message.mid, message.qos)
    time.sleep(0.5)  # let the PUBACKs leave before the connection is cut
    client.disconnect()
    client.loop_stop()

    again: list[paho.MQTTMessage] = []
    client = session(again, 20)
    try:
        time.sleep(0.5)  # nothing more than the 20 should come
        assert sorted(int(m.payload) for m in again) == sorted(int(m.payload) for m in first[20:])
        assert all(m.dup for m in again)
        assert all(m.properties is None for m in again)
    finally:
        client.disconnect()
        client.loop_stop()
