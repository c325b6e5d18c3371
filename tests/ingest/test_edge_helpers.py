"""Test doubles for the edge suite: a Modbus probe, a GMC counter on a pty, an MQTT subscriber.

This module holds no tests; the other ``test_edge_*`` modules import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import select
import struct
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from radmon.config import Settings, load_settings
from tests.broker import Broker, free_port

PREFIX = "radmon/test"


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll *predicate* (blocking) until true; fail with *what* after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def async_wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """The same, without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def edge_settings(
    tmp_path: Path, broker: Broker | None, probes: list[dict[str, Any]], **edge: Any
) -> Settings:
    """Settings for an edge on the private broker (or on a closed port when *broker* is None)."""
    mqtt = {"host": "127.0.0.1", "port": broker.port if broker else free_port()}
    mqtt["topic_prefix"] = PREFIX
    section = {"id": "edge-test", "spool_path": str(tmp_path / "spool.db"), "probes": probes}
    section.update(edge)
    return load_settings(mqtt=mqtt, edge=section)


def write_config(path: Path, broker: Broker, edge: dict[str, Any]) -> Path:
    """A YAML configuration file for a ``radmon edge`` subprocess."""
    import yaml

    document = {
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "topic_prefix": PREFIX},
        "edge": edge,
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


# -- MQTT -------------------------------------------------------------------------------------


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool


class Subscriber:
    """A paho client with a persistent session on ``{PREFIX}/#``: it misses nothing across
    broker restarts (the private broker persists sessions)."""

    def __init__(self, broker: Broker, client_id: str = "test-subscriber") -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        self._client.reconnect_delay_set(0.1, 0.5)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self._client.connect(
            broker.host, broker.port, keepalive=10, clean_start=False, properties=props
        )
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("subscriber could not subscribe")

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe(f"{PREFIX}/#", qos=1)

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append(Received(message.topic, message.payload, message.retain))

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def readings(self, station_id: str | None = None) -> list[dict[str, Any]]:
        """Every reading received on dose topics, in arrival order, with its station."""
        out = []
        for msg in self.snapshot():
            parts = msg.topic.split("/")
            if parts[-1] != "dose" or (station_id and parts[-2] != station_id):
                continue
            body = json.loads(msg.payload)
            for item in body if isinstance(body, list) else [body]:
                out.append({"station_id": parts[-2], **item})
        return out

    def statuses(self, topic_tail: str) -> list[str]:
        """Payloads received on ``{PREFIX}/{topic_tail}`` in order."""
        topic = f"{PREFIX}/{topic_tail}"
        return [m.payload.decode() for m in self.snapshot() if m.topic == topic]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@contextlib.contextmanager
def subscriber(broker: Broker, client_id: str = "test-subscriber") -> Iterator[Subscriber]:
    sub = Subscriber(broker, client_id)
    try:
        yield sub
    finally:
        sub.close()


# -- Modbus -----------------------------------------------------------------------------------


def float32_words(value: float) -> list[int]:
    """A float32 as two registers, high word first."""
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [high, low]


def uint32_words(value: int) -> list[int]:
    return [value >> 16 & 0xFFFF, value & 0xFFFF]


@dataclass
class ModbusProbe:
    """A pymodbus server standing in for a probe; registers 0..199 shared by FC 3 and 4."""

    port: int = field(default_factory=free_port)
    serial_port: str | None = None
    server: ModbusTcpServer | ModbusSerialServer | None = None
    requests: int = 0  # read requests answered, all servers of this probe together

    def _trace(self, sending: bool, pdu: Any) -> Any:
        if sending:
            self.requests += 1
        return pdu

    def _device(self) -> SimDevice:
        return SimDevice(id=1, simdata=[SimData(0, count=200, datatype=DataType.REGISTERS)])

    async def start(self) -> None:
        if self.serial_port:
            self.server = ModbusSerialServer(
                self._device(),
                port=self.serial_port,
                baudrate=19200,
                timeout=0.5,
                trace_pdu=self._trace,
            )
        else:
            self.server = ModbusTcpServer(
                self._device(), address=("127.0.0.1", self.port), trace_pdu=self._trace
            )
        await self.server.serve_forever(background=True)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None

    async def set(self, address: int, words: list[int]) -> None:
        assert self.server is not None
        await self.server.async_setValues(1, 16, address, words)


# -- serial lines on ptys ---------------------------------------------------------------------


def _raw_pty() -> tuple[int, int, str]:
    """A raw pty: (master, slave, slave name). The slave stays open as long as the master:
    with no slave open, Linux reports a hang-up on the master and a reopened slave may go deaf."""
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


class PtyBridge:
    """Two ptys joined back to back: a null-modem cable between two serial port names."""

    def __init__(self) -> None:
        self._a, self._a_slave, self.port_a = _raw_pty()
        self._b, self._b_slave, self.port_b = _raw_pty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        peer = {self._a: self._b, self._b: self._a}
        while not self._stop.is_set():
            ready, _, _ = select.select([self._a, self._b], [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue  # no one has the other end open yet
                with contextlib.suppress(OSError):
                    os.write(peer[fd], data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self._a, self._b, self._a_slave, self._b_slave):
            os.close(fd)


class GmcSimulator:
    """A GQ GMC counter on a pty: answers ``<GETCPM>>`` with ``cpm_bytes`` big-endian bytes."""

    def __init__(self, cpm: int, cpm_bytes: int = 4) -> None:
        self.cpm = cpm
        self.cpm_bytes = cpm_bytes
        self.silent = False  # True: the counter stops answering (unplugged, hung)
        self.late_s: list[float] = []  # the next answers come this late (then at once)
        self.counting = False  # True: each answer is cpm + its request's number (0, 1, ...)
        self.commands: list[bytes] = []
        self._master, self._slave, self.port = _raw_pty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                continue
            try:
                buffer += os.read(self._master, 256)
            except OSError:
                continue
            while b">>" in buffer:
                command, _, buffer = buffer.partition(b">>")
                command += b">>"
                self.commands.append(command)
                if command.endswith(b"<GETCPM>>") and not self.silent:
                    asked = sum(c.endswith(b"<GETCPM>>") for c in self.commands) - 1
                    value = self.cpm + asked if self.counting else self.cpm
                    answer = value.to_bytes(self.cpm_bytes, "big")
                    late = self.late_s.pop(0) if self.late_s else 0.0
                    if late:
                        threading.Timer(late, os.write, (self._master, answer)).start()
                    else:
                        os.write(self._master, answer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self._master)
        os.close(self._slave)


async def run_edge_until(
    settings: Settings, condition: Callable[[], bool], timeout: float, what: str
) -> None:
    """Run the edge in this loop until *condition* holds, then stop it gracefully."""
    from ingest.edge import run_edge

    stop = asyncio.Event()
    task = asyncio.create_task(run_edge(settings, stop))
    try:
        await async_wait_until(lambda: condition() or task.done(), timeout, what)
        if task.done():
            task.result()  # raise what stopped it
            raise AssertionError("the edge stopped on its own")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
