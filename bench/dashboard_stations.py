"""``GET /api/v1/stations`` with 1,000 stations on PostgreSQL, as a polling map sees it.

A throwaway database holds 1,000 ten-minute stations with the last day of readings and open
alarms (``bench.dashboard_common``); ``radmon serve`` runs in its own process with MQTT and
detection off; this process is the client: signed in through the login form, one keep-alive
connection, one request at a time. Three kinds of request, a few hundred each:

- **full**: no If-None-Match, the whole GeoJSON every time (a map opening);
- **conditional**: If-None-Match with the current ETag, a 304 (a map polling, nothing new);
- **after a write**: one new reading committed before each request, and the request sent
  ``LIVE_MAX_AGE_S`` after the previous answer, so nothing the node keeps can be reused (a map
  polling during live ingest); only the request is timed.

The ceiling is the SQL the store sends for ``latest()`` (the latest reading per station and
the open alarms), timed in psycopg against the same database in the same run.

    python -m bench.dashboard_stations [--stations 1000] [--requests 300] [--json out.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from bench._common import (
    ADMIN_URL,
    fmt_int,
    load_average,
    machine_facts,
    percentile,
    print_header,
    stop_on_sigterm,
    throwaway_database,
    write_json,
)
from bench.alerting_latency import trouble
from bench.dashboard_common import (
    NODES,
    add_user,
    login,
    seed_province,
    station_id,
    web_node,
    write_web_config,
)
from dashboard.geojson import LIVE_MAX_AGE_S
from radmon.config import load_settings
from radmon.models import AlarmState
from radmon.store import Store
from radmon.store.schema import alarms
from tests.broker import free_port

TARGET_P95_MS = 50.0


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
    }


def latest_sql(url: str) -> list[str]:
    """The statements ``Store.latest`` sends on a cache miss, with their parameters inlined."""
    store = Store.open(load_settings(database={"url": url}))
    try:
        open_states = [s.value for s in AlarmState if s.is_open]
        queries = [
            store._latest_query(),
            select(alarms.c.station_id, alarms.c.severity).where(alarms.c.state.in_(open_states)),
        ]
        dialect = postgresql.dialect()
        return [
            str(q.compile(dialect=dialect, compile_kwargs={"literal_binds": True})) for q in queries
        ]
    finally:
        store.close()


def time_sql(url: str, statements: Sequence[str], reps: int) -> list[float]:
    """Seconds for all *statements*, fetched, per repetition (after one untimed run)."""
    out = []
    with psycopg.connect(url) as conn:
        for sql in statements:
            conn.execute(sql).fetchall()
        for _ in range(reps):
            started = time.perf_counter()
            for sql in statements:
                conn.execute(sql).fetchall()
            out.append(time.perf_counter() - started)
    return out


def timed(call: Callable[[], httpx.Response], reps: int, expect: int) -> tuple[list[float], int]:
    """Seconds of each of *reps* calls; the size of the last body."""
    out, size = [], 0
    for _ in range(reps):
        started = time.perf_counter()
        answer = call()
        out.append(time.perf_counter() - started)
        if answer.status_code != expect:
            raise AssertionError(f"expected HTTP {expect}, got {answer.status_code}")
        size = len(answer.content)
    return out, size


def run(args: argparse.Namespace, url: str, workdir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"seed": seed_province(url, args.stations)}
    print(f"seeded: {result['seed']}")
    port = free_port()
    config = workdir / "node.yaml"
    write_web_config(config, url, port)
    add_user(config)
    base = f"http://127.0.0.1:{port}"
    stations_url = f"{base}/api/v1/stations"
    log_path = workdir / "node.log"
    with (
        web_node(config, port, log_path, args.node),
        httpx.Client(timeout=30) as client,
        psycopg.connect(url, autocommit=True) as writer,
    ):
        login(client, base)
        first = client.get(stations_url)
        features = len(first.json()["features"])
        if features != args.stations:
            raise AssertionError(f"{features} features for {args.stations} stations")
        for _ in range(args.warmup):
            client.get(stations_url)

        full, size = timed(lambda: client.get(stations_url), args.requests, 200)
        etag = client.get(stations_url).headers["ETag"]
        conditional, _ = timed(
            lambda: client.get(stations_url, headers={"If-None-Match": etag}), args.requests, 304
        )

        after_write: list[float] = []
        for n in range(args.requests):
            time.sleep(LIVE_MAX_AGE_S)  # older than any layer a node may answer from
            writer.execute(
                "INSERT INTO readings (station_id, time, dose_rate_nsv_h) VALUES (%s, %s, %s)",
                [station_id(n % args.stations), datetime.now(UTC), 95.0 + n % 7],
            )
            started = time.perf_counter()
            answer = client.get(stations_url, headers={"If-None-Match": etag})
            after_write.append(time.perf_counter() - started)
            if answer.status_code != 200:
                raise AssertionError(f"a new reading gave HTTP {answer.status_code}, not 200")
        result["body_bytes"] = size
        result["full"] = summary_ms(full)
        result["conditional"] = summary_ms(conditional)
        result["after_write"] = summary_ms(after_write)
        ceiling = time_sql(url, latest_sql(url), args.requests)
        result["ceiling"] = summary_ms(ceiling)
    result["node_log_trouble"] = trouble(log_path)
    return result


def report(result: dict[str, Any]) -> None:
    print()
    print(f"answer: {fmt_int(result['body_bytes'])} bytes of GeoJSON")
    print(f"{'':<44} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'n':>5}")
    rows = (
        ("full answer (200)", "full"),
        ("conditional poll, unchanged (304)", "conditional"),
        ("poll after a new reading (200, uncached)", "after_write"),
        ("ceiling: the store's latest() SQL in psycopg", "ceiling"),
    )
    for label, key in rows:
        s = result[key]
        print(
            f"{label:<44} {s['p50_ms']:>8.2f} {s['p95_ms']:>8.2f} {s['p99_ms']:>8.2f} "
            f"{s['max_ms']:>8.2f} {s['n']:>5}"
        )
    ceiling = result["ceiling"]
    print()
    for label, key in rows[:3]:
        s = result[key]
        verdict = "MET" if s["p95_ms"] <= TARGET_P95_MS else "MISSED"
        print(
            f"{label}: p95 {s['p95_ms']:.1f} ms = {s['p95_ms'] / ceiling['p95_ms']:.2f}× the "
            f"SQL ceiling's p95; target p95 ≤ {TARGET_P95_MS:g} ms: {verdict}"
        )
    hits = result.get("node_log_trouble") or []
    print(f"node log: {len(hits)} warning/error line(s)" + (":" if hits else ""))
    for line in hits:
        print(f"  | {line}")
    print(f"load average at the end: {load_average()}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard_stations", description=__doc__)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300, help="timed requests of each kind")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--node",
        choices=sorted(NODES),
        default="radmon",
        help="radmon: the node as committed; proposed: with the stations route proposed for "
        "dashboard/api.py; proposed-gc: and gc.freeze() after startup (bench.dashboard_node)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--pg", default=ADMIN_URL)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    if args.quick:
        args.stations, args.requests, args.warmup = 50, 20, 2
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    stop_on_sigterm()
    facts = machine_facts(args.pg)
    print_header(
        "GET /api/v1/stations: the live map's poll (radmon serve, PostgreSQL)",
        [
            f"{fmt_int(args.stations)} ten-minute stations, the last 24 h of readings each, "
            "1 % never reported, 2 % silent for 6 h, an open alarm on every 25th",
            f"node: {' '.join(NODES[args.node])} in its own process (MQTT and detection off), "
            "uvicorn on loopback; this process is the client: signed in, one keep-alive "
            "connection, sequential",
            f"{args.requests} timed requests of each kind after {args.warmup} untimed: full "
            "answers, conditional polls (304), polls after a new reading (cache defeated)",
            "ceiling: the store's latest() SQL (latest reading per station + open alarms) in "
            "psycopg, same database, same run",
        ],
        facts,
    )
    started = time.perf_counter()
    with throwaway_database(args.pg) as url, tempfile.TemporaryDirectory() as tmp:
        result = run(args, url, Path(tmp))
    result["seconds"] = round(time.perf_counter() - started, 1)
    report(result)
    print(f"whole run {result['seconds']:.0f} s; throwaway database dropped")
    write_json(args.json, {"machine": facts, "args": vars(args), "result": result})


if __name__ == "__main__":
    main()
