"""The edge's uplink on its own: station statuses the broker refuses, and a broker it never
reaches."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import pytest

from ingest.edge.uplink import Uplink
from tests.broker import Broker
from tests.ingest.test_edge_helpers import PREFIX, edge_settings, subscriber


async def _until(predicate, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


def test_a_refused_status_is_sent_again_once_the_broker_allows_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/edge.md: a station's status says online while its probe answers. The broker first
    refuses QN-B's status (not in its ACL); once the ACL is reloaded, the status goes out
    again on its own, with no change of state to prompt it. (Mosquitto 2.0.11 also drops the
    connection after a refusal; the status then waits for its backoff, not for each
    reconnect, so a refused status cannot make the edge reconnect over and over.)"""
    allow_all = f"topic readwrite {PREFIX}/#\n"
    broker = Broker(tmp_path / "broker", acl=allow_all + f"topic deny {PREFIX}/QN-B/status\n")
    broker.start()
    settings = edge_settings(tmp_path, broker, [])

    async def scenario(sub) -> None:
        uplink = Uplink(settings.mqtt, "edge-acl", asyncio.get_running_loop(), inflight=20)
        uplink.start()
        try:
            await _until(uplink.connected.is_set, 10, "the connection")
            uplink.set_status("QN-A", True)
            uplink.set_status("QN-B", True)
            await _until(lambda: sub.statuses("QN-A/status") == ["online"], 10, "QN-A online")
            await _until(lambda: "refused the status of QN-B" in caplog.text, 10, "the refusal")
            assert sub.statuses("QN-B/status") == []
            broker.acl.write_text(allow_all)
            assert broker.process is not None
            broker.process.send_signal(signal.SIGHUP)  # mosquitto reloads its ACL
            await _until(lambda: sub.statuses("QN-B/status") == ["online"], 20, "QN-B online")
        finally:
            await uplink.close(2.0)

    try:
        with subscriber(broker) as sub, caplog.at_level(logging.WARNING, "ingest.edge.uplink"):
            asyncio.run(scenario(sub))
    finally:
        broker.stop()


def test_a_broker_never_reached_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A mistyped host or port left the edge silent while its spool filled."""
    settings = edge_settings(tmp_path, None, [])

    async def scenario() -> None:
        uplink = Uplink(settings.mqtt, "edge-nowhere", asyncio.get_running_loop(), inflight=20)
        uplink.start()
        try:
            await asyncio.sleep(3.0)  # paho tries at once, then after 1 s and 2 s
        finally:
            await uplink.close(0.5)

    with caplog.at_level(logging.WARNING, logger="ingest.edge.uplink"):
        asyncio.run(scenario())
    told = [r.getMessage() for r in caplog.records if "cannot reach broker" in r.getMessage()]
    assert told == [
        f"cannot reach broker 127.0.0.1:{settings.mqtt.port}; readings stay spooled, retrying"
    ]
