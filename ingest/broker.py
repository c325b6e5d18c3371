"""The one way radmon opens an MQTT connection: MQTT 5, the configured credentials and TLS."""

from __future__ import annotations

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from radmon.config import MqttSettings


def mqtt_client(
    mqtt: MqttSettings, client_id: str, *, max_backoff_s: int, manual_ack: bool = False
) -> paho.Client:
    """A paho client for *client_id* that reconnects by itself, backing off to *max_backoff_s*.

    MQTT 5 because radmon relies on session expiry and Receive Maximum.
    """
    client = paho.Client(
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
