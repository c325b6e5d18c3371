"""Store-and-forward: an uplink outage, a SIGKILL mid-drain and a graceful stop lose nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from ingest.edge import Spool
from ingest.edge.convert import iso_z
from tests.broker import Broker, free_port, publish_all
from tests.ingest.test_edge_helpers import (
    PREFIX,
    ModbusProbe,
    Subscriber,
    async_wait_until,
    edge_settings,
    float32_words,
    run_edge_until,
    subscriber,
    wait_until,
    write_config,
)

ROOT = Path(__file__).resolve().parents[2]
STATIONS = ("QN-A", "QN-B", "QN-C")


def backlog(spool_path: Path, per_station: int) -> set[tuple[str, str]]:
    """Spool one reading a minute per station, as an outage of per_station minutes leaves it."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for minute in range(per_station):
        moment = iso_z(start + timedelta(minutes=minute))
        for station in STATIONS:
            payload = {"time": moment, "dose_rate": 100.0 + minute % 7, "unit": "nSv/h"}
            rows.append((station, moment, json.dumps(payload)))
    spool = Spool(spool_path, max_bytes=512_000_000)
    assert spool.put_many(rows) == len(rows)
    spool.close()
    return {(s, t) for s, t, _ in rows}


def check_delivery(sub: Subscriber, expected: set[tuple[str, str]], allowed_dups: int) -> None:
    """Complete, each station in time order (first arrivals), duplicates only from redelivery."""
    received = [(r["station_id"], r["time"]) for r in sub.readings()]
    assert expected <= set(received), f"{len(expected - set(received))} reading(s) lost"
    duplicates = sum(n - 1 for n in Counter(received).values())
    assert duplicates <= allowed_dups, f"{duplicates} duplicates"
    for station in {s for s, _ in expected}:
        seen: set[str] = set()
        firsts = []
        for s, t in received:
            if s == station and t not in seen:
                seen.add(t)
                firsts.append(t)
        assert firsts == sorted(firsts), f"{station} arrived out of time order"


def _all_arrived(sub: Subscriber, expected: set[tuple[str, str]]) -> bool:
    return expected <= {(r["station_id"], r["time"]) for r in sub.readings()}


def test_long_outage_backlog_drains_complete_and_in_order(tmp_path: Path, broker: Broker) -> None:
    """Two days of backlog from three stations (8,640 readings) plus live readings polled while
    the broker is down; the broker returns and everything arrives, oldest first."""
    spool_path = tmp_path / "spool.db"
    expected = backlog(spool_path, per_station=2880)
    live: list[dict] = []

    async def scenario(sub: Subscriber) -> None:
        probe = ModbusProbe()
        await probe.start()
        await probe.set(0, float32_words(0.3))
        settings = edge_settings(
            tmp_path,
            broker,
            [
                {
                    "station_id": "QN-LIVE",
                    "profile": "generic-float32",
                    "host": "127.0.0.1",
                    "port": probe.port,
                    "interval_s": 0.05,
                }
            ],
            publish_batch=50,
        )

        async def outage_ends() -> None:
            await async_wait_until(lambda: probe.requests >= 10, 10, "live polls while down")
            await asyncio.to_thread(broker.start)

        phase = asyncio.create_task(outage_ends())
        try:
            await run_edge_until(
                settings,
                lambda: _all_arrived(sub, expected) and len(sub.readings("QN-LIVE")) >= 10,
                30,
                "the backlog and live readings",
            )
            await phase
        finally:
            phase.cancel()
            await probe.stop()

    with subscriber(broker) as sub:
        broker.stop()  # the uplink is down before the edge starts
        asyncio.run(scenario(sub))
        check_delivery(sub, expected, allowed_dups=32 * 50)
        live = sub.readings("QN-LIVE")
        # the live readings polled during the outage were spooled after the backlog: they
        # arrive after it
        arrivals = [r["station_id"] for r in sub.readings()]
        last_backlog = max(i for i, s in enumerate(arrivals) if s in STATIONS)
        assert arrivals.index("QN-LIVE") > last_backlog - 32 * 50
        assert [r["time"] for r in live] == sorted(r["time"] for r in live)
        assert all(abs(r["dose_rate"] - 300.0) < 1e-3 for r in live)
    spool = Spool(spool_path, max_bytes=512_000_000)
    assert len(spool) == 0, "acknowledged readings leave the spool"
    spool.close()


def _edge_process(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "radmon", "edge", "--config", str(config)],
            cwd=ROOT,
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def test_sigkill_mid_drain_loses_nothing_and_sigterm_stops_cleanly(
    tmp_path: Path, broker: Broker
) -> None:
    spool_path = tmp_path / "spool.db"
    expected = backlog(spool_path, per_station=4000)  # 12,000 readings, one per message
    config = write_config(
        tmp_path / "edge.yaml",
        broker,
        {"id": "edge-kill", "spool_path": str(spool_path), "publish_batch": 1},
    )
    log = tmp_path / "edge.log"
    with subscriber(broker) as sub:
        first = _edge_process(config, log)
        try:
            wait_until(lambda: len(sub.readings()) >= 1000, 30, "the drain to start")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        got_before_restart = len({(r["station_id"], r["time"]) for r in sub.readings()})
        assert got_before_restart < len(expected), "killed mid-drain, not after it"
        wait_until(
            lambda: sub.statuses("edge/edge-kill/status")[-1:] == ["offline"],
            10,
            "the will message",
        )

        second = _edge_process(config, log)
        try:
            wait_until(lambda: _all_arrived(sub, expected), 45, "the rest of the backlog")
            second.send_signal(signal.SIGTERM)
            assert second.wait(10) == 0, log.read_text()
        finally:
            if second.poll() is None:
                second.kill()
        check_delivery(sub, expected, allowed_dups=2000)
        wait_until(
            lambda: sub.statuses("edge/edge-kill/status")[-1:] == ["offline"],
            10,
            "offline after the graceful stop",
        )
        assert sub.statuses("edge/edge-kill/status") == ["online", "offline", "online", "offline"]
    spool = Spool(spool_path, max_bytes=512_000_000)
    assert len(spool) == 0
    spool.close()


def test_sigterm_while_the_broker_is_unreachable_exits_0_promptly(tmp_path: Path) -> None:
    spool_path = tmp_path / "spool.db"
    expected = backlog(spool_path, per_station=10)
    config = tmp_path / "edge.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "mqtt": {"host": "127.0.0.1", "port": free_port(), "topic_prefix": "radmon/test"},
                "edge": {"id": "edge-down", "spool_path": str(spool_path)},
            }
        )
    )
    log = tmp_path / "edge.log"
    edge = _edge_process(config, log)
    try:
        wait_until(lambda: "reading(s) waiting" in log.read_text(), 20, "the edge to start")
        edge.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert edge.wait(10) == 0, log.read_text()
        assert time.monotonic() - started < 5
    finally:
        if edge.poll() is None:
            edge.kill()
    spool = Spool(spool_path, max_bytes=512_000_000)
    assert {(r.station_id, r.time) for r in spool.take(0, 1000)} == expected  # all kept
    spool.close()


def test_a_station_the_broker_refuses_holds_back_no_other(tmp_path: Path) -> None:
    """A station missing from the broker's ACL: its messages are refused (PUBACK 0x87). The
    other stations' backlog still drains; the refused readings stay spooled; once the ACL
    lets the station in, its backlog follows, in time order. Its backlog (300 readings) is
    larger than a window of messages (4 × 10), where a refusal once stalled every station."""
    allow_all = f"topic readwrite {PREFIX}/#\n"
    broker = Broker(tmp_path / "broker", acl=allow_all + f"topic deny {PREFIX}/QN-B/dose\n")
    broker.start()
    try:
        spool_path = tmp_path / "spool.db"
        expected = backlog(spool_path, per_station=300)
        others = {(s, t) for s, t in expected if s != "QN-B"}
        settings = edge_settings(tmp_path, broker, [], publish_batch=10, publish_window=4)
        with subscriber(broker) as sub:
            done = lambda: _all_arrived(sub, others)  # noqa: E731
            asyncio.run(run_edge_until(settings, done, 30, "the allowed stations' backlog"))
            assert sub.readings("QN-B") == []
            spool = Spool(spool_path, max_bytes=512_000_000)
            waiting = spool.take(0, 10_000)
            spool.close()
            assert {(r.station_id, r.time) for r in waiting} == expected - others

            broker.acl.write_text(allow_all)
            broker.restart()

            # Mosquitto 2.0 with an ACL and anonymous clients drops what arrives for a restored
            # session before its client is back (with users, as deployed, it keeps it): let
            # the subscriber reconnect before the edge sends
            def pinged() -> bool:
                publish_all(broker, [(f"{PREFIX}/ping", b"")])
                time.sleep(0.1)
                return any(m.topic == f"{PREFIX}/ping" for m in sub.snapshot())

            wait_until(pinged, 10, "the subscriber's return")
            done = lambda: _all_arrived(sub, expected)  # noqa: E731
            asyncio.run(run_edge_until(settings, done, 30, "the refused station's backlog"))
        # Mosquitto 2.0 resets the connection after a refused message; paho resends what was
        # in flight, so the others may arrive twice, and (seen once in CI) out of order
        check_delivery(sub, expected - others, allowed_dups=len(expected) // 3)
        assert _all_arrived(sub, others)
    finally:
        broker.stop()
