"""A private Mosquitto on a free loopback port, and the MQTT peers that talk to it.

Tests and benchmarks stop, kill and restart this broker freely.

It runs with persistence and no queue limit, as deploy/mosquitto/mosquitto.conf does, so a
restart keeps persistent sessions and their queued messages: the same promise production has.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt import dose_topic
from radmon.config import Settings

MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)),
    None,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    """One mosquitto process; ``stop``/``start`` keep its port and its persisted sessions."""

    def __init__(
        self, workdir: Path, port: int | None = None, autosave_s: int = 1, acl: str | None = None
    ) -> None:
        """*autosave_s*: how often the persistence file is rewritten (whole: with a large
        queue that costs the broker most of a core); tests keep it short, benchmarks take the
        deployed broker's 30 s. *acl*: the text of an ACL file (``self.acl``: rewrite it and
        restart to change what is allowed)."""
        if MOSQUITTO is None:
            raise RuntimeError("no mosquitto binary on PATH")
        self.workdir = workdir
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        workdir.mkdir(parents=True, exist_ok=True)
        self.acl = workdir / "acl"
        if acl is not None:
            self.acl.write_text(acl)
        self.conf.write_text(
            # run as root, mosquitto would switch to its own user, which cannot write here
            f"user {getpass.getuser()}\n"
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            f"autosave_interval {autosave_s}\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            "persistent_client_expiration 1d\n"
            f"log_dest file {self.log}\n" + (f"acl_file {self.acl}\n" if acl is not None else "")
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text(errors='replace')}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}")

    def stop(self) -> None:
        """A clean stop: mosquitto saves its persistence file first."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def prepare_session(settings: Settings) -> None:
    """Create the ingest's persistent session and subscription, so the broker queues for it."""
    subscribed = threading.Event()
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=settings.mqtt.client_id, protocol=paho.MQTTv5
    )
    client.on_subscribe = lambda *_: subscribed.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect(settings.mqtt.host, settings.mqtt.port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe(dose_topic(settings), qos=1)
    assert subscribed.wait(10)
    client.disconnect()
    client.loop_stop()


def publish_all(broker: Broker, payloads: list[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 and wait until the broker has acknowledged every message."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=paho.MQTTv5)
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, body, qos=1) for topic, body in payloads]
        for info in infos:
            info.wait_for_publish(timeout=60)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()
