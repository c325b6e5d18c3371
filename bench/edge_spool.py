"""Drain rate of the edge spool after an uplink outage, through a real (private) Mosquitto.

An edge that was cut off for days holds a backlog; when the uplink returns it must catch up
well ahead of the live rate. The spool is filled with the backlog of an outage (one reading a
minute per station), then ``run_edge`` starts with the broker up and the clock runs until a
subscriber has every reading and the spool is empty: SQLite reads, JSON batching, paho with up
to ``publish_window`` messages awaiting PUBACK, deletes after PUBACK, and the subscriber's own
decoding are all inside the figure. A private Mosquitto (persistence on, as deployed) runs on a
free loopback port; the system broker is not touched. ``python -m bench.edge_spool --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench._common import fmt_int, machine_facts, print_header, stop_on_sigterm, write_json
from ingest.edge import Spool, run_edge
from ingest.edge.convert import iso_z
from radmon.config import load_settings
from tests.broker import Broker

PREFIX = "radmon/bench"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TIMEOUT_S = 600.0  # a run that has not drained by then is reported as failed, not awaited


def fill_spool(path: Path, stations: int, readings: int) -> int:
    """The backlog of an outage: *readings* in total, one a minute per station, oldest first."""
    per_station = -(-readings // stations)
    rows = []
    for minute in range(per_station):
        moment = iso_z(T0 + timedelta(minutes=minute))
        for s in range(stations):
            if len(rows) == readings:
                break
            payload = {
                "time": moment,
                "dose_rate": 80.0 + (minute * 7 + s) % 40,
                "unit": "nSv/h",
                "temperature_c": 28.5,
                "battery_v": 12.6,
                "status": 0,
            }
            rows.append((f"QN-{s:03d}", moment, json.dumps(payload, separators=(",", ":"))))
    spool = Spool(path, max_bytes=2_000_000_000)
    spool.put_many(rows)
    spool.close()
    return len(rows)


class Counter:
    """A subscriber that counts distinct readings as they arrive."""

    def __init__(self, broker: Broker) -> None:
        self.seen: set[tuple[str, str]] = set()
        self.messages = 0
        self._lock = threading.Lock()
        ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_connect = lambda c, *a: c.subscribe(f"{PREFIX}/+/dose", qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not ready.wait(10):
            raise RuntimeError("the counting subscriber could not subscribe")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        station = message.topic.split("/")[-2]
        items = json.loads(message.payload)
        with self._lock:
            self.messages += 1
            self.seen.update((station, item["time"]) for item in items)

    def count(self) -> int:
        with self._lock:
            return len(self.seen)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def drain(broker: Broker, spool_path: Path, expected: int, batch: int, window: int) -> float:
    """Seconds from the edge's start until the subscriber holds every reading."""
    settings = load_settings(
        mqtt={"host": broker.host, "port": broker.port, "topic_prefix": PREFIX},
        edge={
            "id": "bench-edge",
            "spool_path": str(spool_path),
            "spool_max_mb": 2000,
            "publish_batch": batch,
            "publish_window": window,
        },
    )
    counter = Counter(broker)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(run_edge(settings, stop))
    try:
        while counter.count() < expected:
            if task.done():
                task.result()
                raise RuntimeError("the edge stopped before the backlog drained")
            if time.perf_counter() - started > TIMEOUT_S:
                raise RuntimeError(f"not drained after {TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        await task
        counter.close()
    spool = Spool(spool_path, max_bytes=2_000_000_000)
    left = len(spool)
    spool.close()
    if left > 0:
        raise RuntimeError(f"{left} acknowledged reading(s) still spooled after the stop")
    return elapsed


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.edge_spool", description=__doc__)
    parser.add_argument("--readings", type=int, default=100_000, help="backlog size")
    parser.add_argument("--stations", type=int, default=20, help="stations behind the edge")
    parser.add_argument(
        "--batch",
        type=int,
        action="append",
        help="edge.publish_batch, repeatable (default: 100, 10 and 1)",
    )
    parser.add_argument("--window", type=int, default=32, help="edge.publish_window")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--json", metavar="PATH", help="also write results as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    args.batch = args.batch or [100, 10, 1]
    if args.quick:
        args.readings = 3_000
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    stop_on_sigterm()
    logging.basicConfig(
        level=logging.ERROR
    )  # the edge's own progress lines would drown the figures
    facts = machine_facts(None)
    minutes = -(-args.readings // args.stations)
    print_header(
        "edge spool drain after an outage",
        [
            f"{fmt_int(args.readings)} spooled readings of {args.stations} stations "
            f"(one a minute each: an outage of {minutes / 1440:.1f} days)",
            f"publish_batch {', '.join(map(str, args.batch))}; publish_window {args.window}; "
            "QoS 1, MQTT 5, private Mosquitto on loopback (persistence on)",
            "timed: edge start until the subscriber holds every reading; spool empty after",
        ],
        facts,
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="radmon-bench-edge-") as tmp:
        broker = Broker(Path(tmp) / "broker")
        broker.start()
        try:
            for batch in args.batch:
                spool_path = Path(tmp) / f"spool-{batch}.db"
                total = fill_spool(spool_path, args.stations, args.readings)
                seconds = asyncio.run(drain(broker, spool_path, total, batch, args.window))
                rate = total / seconds
                messages = -(-total // batch)
                print(
                    f"publish_batch {batch:>5}: {fmt_int(total)} readings in {seconds:6.2f} s = "
                    f"{fmt_int(rate):>7} readings/s ({fmt_int(messages / seconds)} messages/s)",
                    flush=True,
                )
                results.append(
                    {"batch": batch, "readings": total, "seconds": seconds, "per_s": rate}
                )
        finally:
            broker.stop()
    write_json(args.json, {"machine": facts, "workload": vars(args), "results": results})


if __name__ == "__main__":
    main()
