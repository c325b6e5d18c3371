"""End-to-end ingest: publishers → Mosquitto → ``radmon serve`` → PostgreSQL, at QoS 1.

Two workloads: one reading per message, and batches of readings per message (JSON arrays).
``radmon serve`` runs as its own process, as in production; the publishers run here. The
figure is readings stored per second from the first publish to the last commit, checked by
count afterwards (zero loss, zero duplicates); the ceiling is a binary COPY of the same rows
into a bare table, measured in the same run. The peak RSS of the serve process is reported
too, and that of its child processes (the detection engine's, and the forkserver it comes
from) summed.

Detection is on, as ``radmon serve`` runs it by default: every committed reading is handed to
the streaming engine (detectors/live.py). The engine's state, saved when serve stops, says how
many readings it judged; the run fails unless that is every reading.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import struct
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
    add_clock_spread,
    clock_offsets,
    fmt_int,
    machine_facts,
    print_header,
    stop_on_sigterm,
    throwaway_database,
    write_json,
)
from bench.store_ingest import pg_raw_copy
from detectors.columns import unpack
from detectors.live import STATE_NAME
from ingest.simulator import ProvinceSimulator, SimulationConfig
from ingest.simulator.config import floor_time
from radmon.config import load_settings
from radmon.models import Station, reading_row
from radmon.store import Store
from tests.broker import Broker, free_port, prepare_session

_STORED = re.compile(r"^radmon_mqtt_readings_stored_total (\S+)$", re.M)


def build_messages(
    n_stations: int,
    per_message: int,
    readings: int,
    age_days: float,
    interval_s: int,
    clock_spread_s: int = 0,
) -> tuple[list[Station], list[tuple[str, bytes]], list[tuple[Any, ...]]]:
    """The province simulator's stations, their readings as messages, and as COPY rows.

    The readings are what ``radmon demo`` streams: counting noise around each station's
    background, its diurnal cycle, moving rain cells (gauges at half the stations), sources,
    plumes, stuck probes and dropouts; so the engine works as it would on a real network. Each
    message carries *per_message* consecutive readings of one station; messages go out in the
    order of their first reading, every station's in turn. The last readings are *age_days*
    before the current interval: with 0, the backlog of a live network, recent to the engine.
    With *clock_spread_s*, each station reports on its own clock, a fixed 0..clock_spread_s s
    after the simulated times, as real probes do.
    """
    per_station = readings // n_stations
    # a station whose clock runs late must still not report from the future
    end = datetime.now(UTC) - timedelta(days=age_days, seconds=clock_spread_s)
    start = floor_time(end - timedelta(seconds=per_station * interval_s), interval_s)
    sim = ProvinceSimulator(
        SimulationConfig(n_stations=n_stations, seed=2026, interval_s=interval_s, start=start)
    )
    series: dict[str, list[dict[str, Any]]] = {s.station_id: [] for s in sim.stations}
    late = clock_offsets([s.station_id for s in sim.stations], clock_spread_s, seed=2026)
    rows = []
    for _ in range(per_station):
        for r in sim.to_readings(sim.step()):
            if clock_spread_s:
                r = r.model_copy(update={"time": r.time + timedelta(seconds=late[r.station_id])})
            item = {"time": r.time.isoformat(), "dose_rate": r.dose_rate_nsv_h, "unit": "nSv/h"}
            item.update(uncertainty=r.uncertainty_nsv_h, counts=r.counts, interval_s=interval_s)
            if r.precip_mm_h is not None:
                item["precip_mm_h"] = r.precip_mm_h
            series[r.station_id].append(item)
            rows.append(reading_row(r))
    messages = []
    for sid, items in series.items():
        for first in range(0, len(items), per_message):
            chunk = items[first : first + per_message]
            body = chunk[0] if per_message == 1 else chunk
            messages.append((chunk[0]["time"], f"radmon/v1/{sid}/dose", json.dumps(body).encode()))
    # interleave stations, as a live network would deliver them
    messages.sort(key=lambda m: m[0])
    return sim.stations, [(topic, body) for _, topic, body in messages], rows


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


def publish_raw(broker: Broker, messages: Sequence[tuple[str, bytes]], clients: int) -> float:
    """As :func:`publish`, from MQTT 3.1.1 PUBLISH packets encoded beforehand and written
    straight to the socket: a publisher that costs next to no CPU, so the figure is the
    ingest's and not the load generator's."""

    def packets(part: Sequence[tuple[str, bytes]]) -> list[bytes]:
        out = []
        for i, (topic, body) in enumerate(part):
            name = topic.encode()
            rest = struct.pack("!H", len(name)) + name + struct.pack("!H", i % 65535 + 1) + body
            out.append(b"\x32" + _varint(len(rest)) + rest)
        return out

    def worker(encoded: list[bytes], index: int) -> None:
        window = threading.Semaphore(20_000)  # < 65,535 packet ids: one is reused once acked
        with socket.create_connection((broker.host, broker.port)) as sock:
            client_id = f"bench-raw-{index}".encode()
            body = b"\x00\x04MQTT\x04\x02\x00\x00" + struct.pack("!H", len(client_id))
            sock.sendall(b"\x10" + _varint(len(body) + len(client_id)) + body + client_id)
            reader = sock.makefile("rb")
            if reader.read(4)[:2] != b"\x20\x02":
                raise RuntimeError("the broker refused the raw publisher")

            def acks() -> None:
                for _ in encoded:
                    if reader.read(4)[:2] != b"\x40\x02":
                        raise RuntimeError("expected a PUBACK")
                    window.release()

            counting = threading.Thread(target=acks)
            counting.start()
            chunk: list[bytes] = []
            for packet in encoded:
                window.acquire()
                chunk.append(packet)
                if len(chunk) >= 64:
                    sock.sendall(b"".join(chunk))
                    chunk = []
            sock.sendall(b"".join(chunk))
            counting.join()
            sock.sendall(b"\xe0\x00")

    parts = [packets(messages[i::clients]) for i in range(clients)]
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(part, i)) for i, part in enumerate(parts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        value, byte = divmod(value, 128)
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def stored_so_far(web_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as answer:
        found = _STORED.search(answer.read().decode())
    return float(found.group(1)) if found else 0.0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def descendants(pid: int) -> list[int]:
    """Every living process below *pid* (children, their children...)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = parents.get(todo.pop(), [])
        found += below
        todo += below
    return found


def children_peak_rss_mb(pid: int) -> float:
    """The peak RSS of *pid*'s descendants, summed (pages they share are counted in each)."""
    total = 0.0
    for child in descendants(pid):
        with contextlib.suppress(OSError):
            total += peak_rss_mb(child)
    return total


def run_workload(
    url: str, broker: Broker, workdir: Path, args: argparse.Namespace, per_message: int
) -> dict[str, Any]:
    settings = load_settings(
        database={"url": url},
        mqtt={"host": broker.host, "port": broker.port, "client_id": f"bench-{per_message}"},
    )
    store = Store.open(settings)
    store.upgrade()
    stations, messages, rows = build_messages(
        args.stations, per_message, args.readings, args.age_days, args.interval, args.clock_spread
    )
    store.upsert_stations(stations)
    with psycopg.connect(url, autocommit=True) as conn:
        # each workload starts from nothing: no readings, no alarms, no detector state
        conn.execute(
            "TRUNCATE readings, readings_hourly, readings_daily, alarms, detector_state CASCADE"
        )
    prepare_session(settings)
    web_port = free_port()
    config = workdir / f"serve-{per_message}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"url": url},
                "mqtt": settings.mqtt.model_dump(),
                "web": {"port": web_port},
                "detection": {"enabled": args.detection == "on"},  # on: the default, stated
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
        send = publish_raw if args.publisher == "raw" else publish
        publish_s = send(broker, messages, args.publishers)
        deadline = time.monotonic() + 900
        while (done := stored_so_far(web_port)) < len(rows):
            if time.monotonic() > deadline or node.poll() is not None:
                raise RuntimeError("the ingest did not store every reading in time")
            # /metrics costs serve a query: ask rarely, except near the end (the end's precision)
            time.sleep(0.02 if done >= 0.95 * len(rows) else 0.2)
        elapsed = time.perf_counter() - started
        rss = peak_rss_mb(node.pid)
        children_rss = children_peak_rss_mb(node.pid)
    finally:
        node.terminate()
        node.wait(30)
        log.close()
    with psycopg.connect(url) as conn:
        count, keys = conn.execute(
            "SELECT count(*), count(DISTINCT (station_id, time)) FROM readings"
        ).fetchone()
        kinds = dict(conn.execute("SELECT kind, count(*) FROM alarms GROUP BY kind").fetchall())
    alarms = sum(kinds.values())
    stats = engine_stats(store)
    judged = stats.get("readings", 0)
    store.close()
    if args.detection == "on" and judged < len(rows):
        raise RuntimeError(f"detection judged {judged} of {len(rows)} readings: was it on?")
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
        "children_peak_rss_mb": children_rss,
        "judged": judged,
        "engine_steps": stats.get("steps", 0),
        "alarms": alarms,
        "alarm_kinds": kinds,
    }


def engine_stats(store: Store) -> dict[str, int]:
    """The counters of serve's detection engine (readings judged, time steps taken...), from
    its saved state; empty if it saved none."""
    saved = store.load_detector_state(STATE_NAME)
    if saved is None:
        return {}
    meta = json.loads(unpack(saved[1])["meta"].tobytes().decode())
    return {name: int(value) for name, value in meta["stats"].items()}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_mqtt", description=__doc__)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--single", type=int, default=100_000, help="readings, 1 per message")
    parser.add_argument("--batched", type=int, default=1_000_000, help="readings in batches")
    parser.add_argument("--batch", type=int, default=100, help="readings per batched message")
    parser.add_argument("--publishers", type=int, default=2, help="publishing connections")
    parser.add_argument(
        "--publisher",
        choices=["paho", "raw"],
        default="paho",
        help="paho clients (as devices), or pre-encoded packets written to the socket",
    )
    parser.add_argument(
        "--detection",
        choices=["on", "off"],
        default="on",
        help="off only to see what the ingest does without the detectors (not the target)",
    )
    parser.add_argument("--interval", type=int, default=600, help="seconds between readings")
    parser.add_argument(
        "--age-days",
        type=float,
        default=0.0,
        help="how old the last reading is (0: ending now, as a live backlog; 30: the old runs)",
    )
    add_clock_spread(parser)
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
            f"the province simulator's readings every {args.interval} s (rain, gauges at half "
            "the stations, sources, faults), ending "
            + (f"{args.age_days:g} days ago" if args.age_days else "now (a recent backlog)")
            + (
                f"; each station on its own clock, 0–{args.clock_spread} s late"
                if args.clock_spread
                else "; every station at the same instants"
            ),
            f"{args.publishers} publishing connections ({args.publisher}) in this process; "
            "radmon serve in its own process with default ingest settings; a private "
            "Mosquitto 2 (persistence on, saved every 30 s as deployed)",
            "rate = readings / (first publish → last commit); raw COPY = binary COPY of the "
            "same rows into a bare table, batches of 5,000, same database, same run",
            (
                "detection on (serve's default): every committed reading is judged by the "
                "streaming engine; checked afterwards from the engine's saved state"
                if args.detection == "on"
                else "detection OFF (a diagnosis, not the benchmark of issue 3)"
            ),
        ],
        facts,
    )
    results = []
    with throwaway_database(args.pg) as url, tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp) / "broker", autosave_s=30)  # as deploy/mosquitto
        broker.start()
        try:
            for per_message, count in ((1, args.single), (args.batch, args.batched)):
                args.readings = count
                results.append(run_workload(url, broker, Path(tmp), args, per_message))
        finally:
            broker.stop()
    print(
        f"{'per msg':>7} {'readings':>10} {'publish/s':>10} {'stored/s':>10} "
        f"{'raw COPY/s':>11} {'ratio':>6} {'lost':>5} {'dup':>4} {'RSS MB':>7} {'+child':>6} "
        f"{'judged':>10} {'per step':>8} {'alarms':>6}"
    )
    for r in results:
        print(
            f"{r['per_message']:>7} {fmt_int(r['readings']):>10} {fmt_int(r['publish_rate']):>10} "
            f"{fmt_int(r['rate']):>10} {fmt_int(r['raw_copy_rate']):>11} "
            f"{100 * r['rate'] / r['raw_copy_rate']:>5.1f}% {r['readings'] - r['distinct']:>5} "
            f"{r['stored'] - r['distinct']:>4} {r['peak_rss_mb']:>7.0f} "
            f"{r['children_peak_rss_mb']:>6.0f} "
            f"{fmt_int(r['judged']):>10} {r['judged'] / max(r['engine_steps'], 1):>8.1f} "
            f"{r['alarms']:>6}"
        )
    write_json(args.json, {"facts": facts, "results": results})


if __name__ == "__main__":
    main()
