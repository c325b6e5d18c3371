"""The one way radmon opens an MQTT connection: MQTT 5, the configured credentials and TLS."""

from __future__ import annotations

import functools

import paho.mqtt.client as paho
from paho.mqtt import __version__ as paho_version
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from radmon.config import MqttSettings


def mqtt_client(
    mqtt: MqttSettings, client_id: str, *, max_backoff_s: int, manual_ack: bool = False
) -> paho.Client:
    """A paho client for *client_id* that reconnects by itself, backing off to *max_backoff_s*.

    MQTT 5 because radmon relies on session expiry and Receive Maximum. With *manual_ack* (the
    central ingest) the client is a :class:`LeanReceiver`.
    """
    kind = LeanReceiver if manual_ack and LeanReceiver.usable() else paho.Client
    client = kind(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
        manual_ack=manual_ack,
    )
    if mqtt.username:
        client.username_pw_set(mqtt.username, mqtt.password)
    if mqtt.tls:
        client.tls_set(ca_certs=mqtt.ca_file)
    client.reconnect_delay_set(min_delay=1, max_delay=max_backoff_s)
    return client


class LeanReceiver(paho.Client):
    """A paho client that receives a QoS 1 PUBLISH without properties for less.

    paho builds an MQTT 5 ``Properties`` object for every incoming PUBLISH, which alone costs
    about a third of its network thread when messages carry one reading each
    (docs/benchmarks.md). Mosquitto forwards what publishers send, and devices send no
    properties, so the common message here has none: such a message is decoded as paho does,
    with ``properties`` None, as for MQTT 3.1.1. Anything else (QoS 0 or 2, properties, a
    packet too short, automatic acknowledgement, paho's logging on) goes through paho's own
    code. Acknowledgement stays manual: the ingest sends PUBACK after the commit.
    """

    def _handle_publish(self) -> MQTTErrorCode:
        header = self._in_packet["command"]
        packet = self._in_packet["packet"]
        size = len(packet)
        if (
            header & 0x06 != 0x02  # QoS 1 only
            or not self._manual_ack
            or self._logger is not None
            or self.on_log is not None
            or size < 5
        ):
            return super()._handle_publish()
        end = 2 + ((packet[0] << 8) | packet[1])  # the topic's length, then the topic
        if size <= end + 2 or packet[end + 2] != 0:  # properties (or malformed): paho's way
            return super()._handle_publish()
        message = paho.MQTTMessage(
            mid=(packet[end] << 8) | packet[end + 1], topic=bytes(packet[2:end])
        )
        message.dup = header & 0x08 != 0
        message.qos = 1
        message.retain = header & 0x01 != 0
        message.payload = bytes(packet[end + 3 :])
        message.timestamp = paho.time_func()
        self._handle_on_message(message)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    @staticmethod
    @functools.cache
    def usable() -> bool:
        """Whether this paho has the internals the shortcut relies on (2.x does)."""
        probe = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5, manual_ack=True)
        return (
            paho_version.startswith("2.")
            and hasattr(paho, "time_func")
            and all(
                hasattr(probe, name)
                for name in ("_in_packet", "_manual_ack", "_logger", "_handle_on_message")
            )
            and callable(getattr(paho.Client, "_handle_publish", None))
        )
