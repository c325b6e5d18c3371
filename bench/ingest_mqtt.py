"""End-to-end ingest: publishers → Mosquitto → ``radmon serve`` → PostgreSQL, at QoS 1.

Two workloads: one reading per message, and batches of readings per message (JSON arrays).
``radmon serve`` runs as its own process, as in production; the publishers run here. The
figure is readings stored per second from the first publish to the last commit, checked by
count afterwards (zero loss, zero duplicates); the ceiling is a binary COPY of the same rows
into a bare table, measured in the same run. The serve process's peak RSS is reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psycopg
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from bench._common import (
    ADMIN_URL,
    fmt_int,
    machine_facts,
    print_header,
    stop_on_sigterm,
    throwaway_database,
    write_json,
)
from bench.store_ingest import pg_raw_copy
from radmon.config import load_settings
from radmon.models import Reading, Station
from radmon.store import Store
from radmon.store.bulk import reading_row
from tests.broker import Broker, free_port, prepare_session

_STORED = re.compile(r"^radmon_mqtt_readings_stored_total (\S+)$", re.M)


def build_messages(
    stations: int, per_message: int, readings: int
) -> tuple[list[tuple[str, bytes]], list[tuple[Any, ...]]]:
    """Messages minute by minute across all stations, and the same readings as COPY rows."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=30)
    messages, rows = [], []
    per_station = readings // stations
    for station in range(stations):
        sid = f"ST{station:05d}"
        for first in range(0, per_station, per_message):
            items = []
            for k in range(first, min(first + per_message, per_station)):
                at = start + timedelta(minutes=k)
                value = 80.0 + (station * 7 + k) % 40
                items.append({"time": at.isoformat(), "dose_rate": value, "unit": "nSv/h"})
                rows.append(
                    reading_row(
                        Reading.model_construct(station_id=sid, time=at, dose_rate_nsv_h=value)
                    )
                )
            body = items[0] if per_message == 1 else items
            messages.append((f"radmon/v1/{sid}/dose", json.dumps(body).encode()))
    # interleave stations, as a live network would deliver them
    messages.sort(key=lambda m: json.loads(m[1])["time"] if per_message == 1 else m[1][:40])
    return messages, rows


def publish(broker: Broker, messages: Sequence[tuple[str, bytes]], clients: int) -> float:
    """Publish at QoS 1 from *clients* connections; seconds until every PUBACK arrived."""

    def worker(part: Sequence[tuple[str, bytes]]) -> None:
        client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.connect(broker.host, broker.port)
        client.loop_start()
        infos = [client.publish(topic, body, qos=1) for topic, body in part]
        for info in infos:
            info.wait_for_publish(timeout=600)
        client.disconnect()
        client.loop_stop()

    started = time.perf_counter()
    threads = [
        threading.Thread(target=worker, args=(messages[i::clients],)) for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def stored_so_far(web_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as answer:
        found = _STORED.search(answer.read().decode())
    return float(found.group(1)) if found else 0.0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_workload(
    url: str, broker: Broker, workdir: Path, args: argparse.Namespace, per_message: int
) -> dict[str, Any]:
    settings = load_settings(
        database={"url": url},
        mqtt={"host": broker.host, "port": broker.port, "client_id": f"bench-{per_message}"},
    )
    store = Store.open(settings)
    store.upgrade()
    store.upsert_stations(
        Station(station_id=f"ST{i:05d}", name=f"Station {i}", lat=21.0, lon=107.0)
        for i in range(args.stations)
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE readings, readings_hourly, readings_daily")
    messages, rows = build_messages(args.stations, per_message, args.readings)
    prepare_session(settings)
    web_port = free_port()
    config = workdir / f"serve-{per_message}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"url": url},
                "mqtt": settings.mqtt.model_dump(),
                "web": {"port": web_port},
            }
        )
    )
    log = (workdir / f"serve-{per_message}.log").open("wb")
    env = {**os.environ, "RADMON_CONFIG": str(config)}
    node = subprocess.Popen(
        [sys.executable, "-m", "radmon", "serve"], env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                stored_so_far(web_port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        started = time.perf_counter()
        publish_s = publish(broker, messages, args.publishers)
        deadline = time.monotonic() + 900
        while stored_so_far(web_port) < len(rows):
            if time.monotonic() > deadline or node.poll() is not None:
                raise RuntimeError("the ingest did not store every reading in time")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        rss = peak_rss_mb(node.pid)
    finally:
        node.terminate()
        node.wait(30)
        log.close()
    with psycopg.connect(url) as conn:
        count, keys = conn.execute(
            "SELECT count(*), count(DISTINCT (station_id, time)) FROM readings"
        ).fetchone()
    store.close()
    raw_s = pg_raw_copy(url, [rows[i : i + 5000] for i in range(0, len(rows), 5000)], False)
    return {
        "per_message": per_message,
        "messages": len(messages),
        "readings": len(rows),
        "publish_rate": len(rows) / publish_s,
        "rate": len(rows) / elapsed,
        "raw_copy_rate": len(rows) / raw_s,
        "stored": count,
        "distinct": keys,
        "peak_rss_mb": rss,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_mqtt", description=__doc__)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--single", type=int, default=100_000, help="readings, 1 per message")
    parser.add_argument("--batched", type=int, default=1_000_000, help="readings in batches")
    parser.add_argument("--batch", type=int, default=100, help="readings per batched message")
    parser.add_argument("--publishers", type=int, default=2, help="publishing connections")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--pg", default=ADMIN_URL)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    if args.quick:
        args.stations, args.single, args.batched = 50, 2000, 20_000
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    stop_on_sigterm()
    facts = machine_facts(args.pg)
    print_header(
        "MQTT → radmon serve → PostgreSQL, QoS 1, acknowledged after commit",
        [
            f"{fmt_int(args.stations)} stations; (a) {fmt_int(args.single)} readings, one per "
            f"message; (b) {fmt_int(args.batched)} readings, {args.batch} per message",
            f"{args.publishers} publishing connections in this process; radmon serve in its own "
            "process with default ingest settings; a private Mosquitto 2 (persistence on)",
            "rate = readings / (first publish → last commit); raw COPY = binary COPY of the "
            "same rows into a bare table, batches of 5,000, same database, same run",
            "detectors: none yet (the detection engine is not part of serve yet)",
        ],
        facts,
    )
    results = []
    with throwaway_database(args.pg) as url, tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp) / "broker")
        broker.start()
        try:
            for per_message, count in ((1, args.single), (args.batch, args.batched)):
                args.readings = count
                results.append(run_workload(url, broker, Path(tmp), args, per_message))
        finally:
            broker.stop()
    print(
        f"{'per msg':>7} {'readings':>10} {'publish/s':>10} {'stored/s':>10} "
        f"{'raw COPY/s':>11} {'ratio':>6} {'lost':>5} {'dup':>4} {'RSS MB':>7}"
    )
    for r in results:
        print(
            f"{r['per_message']:>7} {fmt_int(r['readings']):>10} {fmt_int(r['publish_rate']):>10} "
            f"{fmt_int(r['rate']):>10} {fmt_int(r['raw_copy_rate']):>11} "
            f"{100 * r['rate'] / r['raw_copy_rate']:>5.1f}% {r['readings'] - r['distinct']:>5} "
            f"{r['stored'] - r['distinct']:>4} {r['peak_rss_mb']:>7.0f}"
        )
    write_json(args.json, {"facts": facts, "results": results})


if __name__ == "__main__":
    main()
