"""Query latency of the store on a month of one-minute data from a thousand stations.

The live map asks ``latest()`` every few seconds, a chart asks ``series()``, the monthly report
asks ``stats()``: each must stay fast when the readings table holds tens of millions of rows.
The data are generated server-side (``generate_series``), so filling 43 M rows takes minutes,
not the hours Python would need. Run ``python -m bench.store_queries --help`` for the knobs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Engine, event

from bench._common import (
    ADMIN_URL,
    fmt_int,
    load_average,
    machine_facts,
    print_header,
    stop_on_sigterm,
    summarize_ms,
    throwaway_database,
    write_json,
)
from radmon.config import load_settings
from radmon.models import Reading, Resolution, Station
from radmon.runtime import settle_collector
from radmon.store import Store

END = datetime(2026, 11, 21, tzinfo=UTC)  # the data end here (exclusive), UTC midnight
RAGGED = timedelta(minutes=17)
FILL_SQL = """
    INSERT INTO readings (station_id, time, dose_rate_nsv_h)
    SELECT 'BQ' || lpad(({station})::text, 5, '0'),
           %(t0)s::timestamptz + ({minute}) * interval '1 minute',
           80 + 40 * random()
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g
"""
# Row g of the month, for S stations and M minutes: which station and which minute it is.
LAYOUTS = {
    # Arrival order (every station's minute t, then t+1): what live ingest writes.
    "time": {"station": "mod(g, %(s)s::bigint)", "minute": "g / %(s)s::bigint"},
    # Clustered by station: what a bulk import of one station after another writes.
    "station": {"station": "g / %(m)s::bigint", "minute": "mod(g, %(m)s::bigint)"},
}
ROLLUP_SQL = """
    INSERT INTO {table} (station_id, bucket, n, sum_nsv_h, min_nsv_h, max_nsv_h, rain_n,
                         rain_sum_mm_h)
    SELECT station_id, {bucket}, count(*), sum(dose_rate_nsv_h), min(dose_rate_nsv_h),
           max(dose_rate_nsv_h), count(precip_mm_h), sum(precip_mm_h)
    FROM readings GROUP BY 1, 2
"""


def make_stations(n: int) -> list[Station]:
    """*n* one-minute stations with the ids the fill SQL generates (``BQ00000``…)."""
    return [
        Station(
            station_id=f"BQ{i:05d}",
            name=f"Query bench station {i}",
            lat=20.0 + (i % 100) * 0.02,
            lon=106.0 + (i // 100) * 0.02,
            interval_s=60,
        )
        for i in range(n)
    ]


def fill(url: str, n_stations: int, days: int, layout: str, zone: str) -> dict[str, float]:
    """Fill readings and both rollups server-side, then VACUUM ANALYZE; seconds per step."""
    minutes = days * 1440
    total = n_stations * minutes
    parts = LAYOUTS[layout]
    insert = FILL_SQL.format(station=parts["station"], minute=parts["minute"])
    # One statement per day of the month (time layout) or per 50 stations (station layout).
    step = n_stations * 1440 if layout == "time" else 50 * minutes
    timings: dict[str, float] = {}
    with psycopg.connect(url) as conn:
        conn.execute("SET synchronous_commit = off")
        started = time.perf_counter()
        for lo in range(0, total, step):
            params = {
                "t0": END - timedelta(days=days),
                "lo": lo,
                "hi": min(lo + step, total) - 1,
                "s": n_stations,
                "m": minutes,
            }
            conn.execute(insert, params)
            conn.commit()
        timings["readings_s"] = time.perf_counter() - started
        conn.execute("SET work_mem = '256MB'")
        for table, bucket in (
            ("readings_hourly", "date_trunc('hour', time)"),
            ("readings_daily", "date_trunc('day', time, %(zone)s)"),
        ):
            started = time.perf_counter()
            conn.execute(ROLLUP_SQL.format(table=table, bucket=bucket), {"zone": zone})
            conn.commit()
            timings[f"{table}_s"] = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze_s"] = time.perf_counter() - started
        # the fill's gigabytes of dirty pages are written now, not during the timed queries
        started = time.perf_counter()
        conn.execute("CHECKPOINT")
        timings["checkpoint_s"] = time.perf_counter() - started
    timings["total_s"] = sum(timings.values())
    return timings


def mark_newest_hours(url: str, hours: int) -> None:
    """Mark the newest *hours* as not yet refreshed, as a live store is between two refreshes."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO rollup_dirty (bucket) "
            "SELECT %(end)s::timestamptz - g * interval '1 hour' FROM generate_series(1, %(n)s) g",
            {"end": END, "n": hours},
        )


def sizes(url: str) -> dict[str, str]:
    """Table sizes with indexes, for the record."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class "
            "WHERE relname IN ('readings', 'readings_hourly', 'readings_daily') ORDER BY 1"
        ).fetchall()
    return dict(rows)


def time_calls(
    call: Callable[[], Any],
    warmup: int,
    reps: int,
    prepare: Callable[[], Any] | None = None,
) -> list[float]:
    """Seconds of each of *reps* calls after *warmup* untimed ones; *prepare* runs, untimed,
    before every call."""
    for _ in range(warmup):
        if prepare is not None:
            prepare()
        call()
    timings = []
    for _ in range(reps):
        if prepare is not None:
            prepare()
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return timings


@contextmanager
def captured_sql(engine: Engine) -> Iterator[list[dict[str, Any]]]:
    """Every statement *engine* runs inside the block, with its parameters and duration."""
    found: list[dict[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool):
        found.append({"sql": statement, "params": parameters, "started": time.perf_counter()})

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool):
        found[-1]["ms"] = round((time.perf_counter() - found[-1].pop("started")) * 1000, 2)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield found
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def explain(
    store: Store, call: Callable[[], Any], prepare: Callable[[], Any] | None = None
) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the SQL *call* sends, exactly as the store sends it."""
    if prepare is not None:
        prepare()
    with captured_sql(store.engine) as statements:
        call()
    out = []
    with store.engine.connect() as conn:
        for item in statements:
            if not item["sql"].lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            plan = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + item["sql"], item["params"]
            ).fetchall()
            out.append(f"-- {item.get('ms', '?')} ms in the call; parameters {item['params']}")
            out.append(item["sql"].strip())
            out.extend(row[0] for row in plan)
            out.append("")
    return out


def check(condition: bool, what: str) -> None:
    """Stop the benchmark when the store's answer is wrong: a fast wrong answer is no figure."""
    if not condition:
        raise AssertionError(f"wrong answer from the store: {what}")


def queries(store: Store, n_stations: int, days: int) -> list[dict[str, Any]]:
    """The timed calls: name, call, target (ms) and a check of the answer."""
    start = END - timedelta(days=days)
    minutes = days * 1440
    station = f"BQ{n_stations // 2:05d}"
    ragged_start, ragged_end = start + RAGGED, END - timedelta(hours=1) + RAGGED
    ragged_minutes = int((ragged_end - ragged_start).total_seconds() // 60)
    raw_start = END - timedelta(days=1)
    newest = [END - timedelta(minutes=1)]

    def latest() -> None:
        got = store.latest()
        check(len(got) == n_stations, "latest(): one entry per station")
        check(all(x.time == newest[0] for x in got), "latest(): newest time")

    def new_minute() -> None:
        """Every station's next reading, through the store, as live ingest writes between two
        polls of the map: the next ``latest()`` cannot reuse anything."""
        newest[0] += timedelta(minutes=1)
        store.write_readings(
            [
                Reading(station_id=f"BQ{i:05d}", time=newest[0], dose_rate_nsv_h=100.0 + i % 7)
                for i in range(n_stations)
            ]
        )

    def series(resolution: Resolution, lo: datetime, expect: int) -> Callable[[], None]:
        def run() -> None:
            got = store.series(station, lo, END, resolution)
            check(len(got) == expect, f"series({resolution}): {len(got)} points, not {expect}")

        return run

    def stats(lo: datetime, hi: datetime, expect: int) -> Callable[[], None]:
        def run() -> None:
            got = store.stats(lo, hi)
            check(len(got) == n_stations, "stats(): one entry per station")
            check(all(x.count == expect for x in got), f"stats(): every count {expect}")

        return run

    # Local (UTC+7) days overlapping a UTC-midnight-aligned period: one more than whole days.
    return [
        {"name": "latest(), nothing new", "call": latest, "target_ms": 50},
        {
            "name": f"series HOUR, {days} d",
            "call": series(Resolution.HOUR, start, days * 24),
            "target_ms": 100,
        },
        {
            "name": f"series DAY, {days} d",
            "call": series(Resolution.DAY, start, days + 1),
            "target_ms": 100,
        },
        {
            "name": "series RAW, 1 d",
            "call": series(Resolution.RAW, raw_start, 1440),
            "target_ms": 100,
        },
        {
            "name": f"stats, {days} d, hour-aligned",
            "call": stats(start, END, minutes),
            "target_ms": 2000,
        },
        {
            "name": f"stats, {days} d, ragged (+17 min)",
            "call": stats(ragged_start, ragged_end, ragged_minutes),
            "target_ms": 2000,
        },
        # last: the readings it adds lie after the period the queries above read
        {
            "name": "latest(), every station new",
            "call": latest,
            "prepare": new_minute,
            "target_ms": 50,
        },
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Full sizes by default; ``--quick`` runs in seconds."""
    parser = argparse.ArgumentParser(prog="python -m bench.store_queries", description=__doc__)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--reps", type=int, default=30, help="timed calls per query")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first")
    parser.add_argument(
        "--layout",
        choices=sorted(LAYOUTS),
        default="time",
        help="physical order of the fill: 'time' as live ingest writes (default), "
        "'station' as a station-by-station import writes",
    )
    parser.add_argument(
        "--dirty-hours",
        type=int,
        default=0,
        help="mark the newest N hours as not yet refreshed: reads answer them from raw readings",
    )
    parser.add_argument(
        "--explain", action="store_true", help="print the plans of every query, not only misses"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--pg", default=ADMIN_URL, help="admin URL used to create databases")
    parser.add_argument("--json", metavar="PATH", help="also write results as JSON ('-': stdout)")
    args = parser.parse_args(argv)
    if args.quick:
        args.stations, args.days, args.reps, args.warmup = 20, 2, 5, 1
    if args.stations < 2 or args.days < 1 or args.reps < 1 or args.warmup < 0:
        parser.error("need --stations ≥ 2, --days ≥ 1, --reps ≥ 1, --warmup ≥ 0")
    if not 0 <= args.dirty_hours <= args.days * 24:
        parser.error("--dirty-hours must be between 0 and the hours of data")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Fill a throwaway database, time the store's queries and print them against targets."""
    args = parse_args(argv)
    stop_on_sigterm()
    facts = machine_facts(args.pg)
    rows = args.stations * args.days * 1440
    print_header(
        "bench.store_queries",
        [
            f"PostgreSQL, {fmt_int(args.stations)} stations × {args.days} days of 1-minute "
            f"readings = {fmt_int(rows)} rows, filled server-side in {args.layout} order; "
            "rollups filled by INSERT … SELECT … GROUP BY; VACUUM ANALYZE; CHECKPOINT; newest "
            f"{args.dirty_hours} h marked as not yet refreshed",
            f"each query through the Store API: {args.warmup} warm-up calls, then {args.reps} "
            "timed calls (median and nearest-rank p95), with radmon serve's collector settings",
        ],
        facts,
    )
    document: dict[str, Any] = {"benchmark": "store_queries", "machine": facts, "args": vars(args)}
    with throwaway_database(args.pg) as url:
        store = Store.open(load_settings(database={"url": url}))
        try:
            store.upgrade()
            store.upsert_stations(make_stations(args.stations))
            zone = store.meta()["daily_timezone"]
            filled = fill(url, args.stations, args.days, args.layout, zone)
            mark_newest_hours(url, args.dirty_hours)
            document["fill"] = filled
            document["sizes"] = sizes(url)
            print(
                f"fill: {filled['total_s']:.1f} s (readings {filled['readings_s']:.1f} s = "
                f"{fmt_int(rows / filled['readings_s'])} rows/s, hourly "
                f"{filled['readings_hourly_s']:.1f} s, daily {filled['readings_daily_s']:.1f} s, "
                f"VACUUM ANALYZE {filled['vacuum_analyze_s']:.1f} s, CHECKPOINT "
                f"{filled['checkpoint_s']:.1f} s); rollups "
                f"{store.meta()['rollups']}"
            )
            print("sizes: " + ", ".join(f"{k} {v}" for k, v in document["sizes"].items()))
            print(f"load average after the fill: {load_average()}", end="\n\n", flush=True)
            settle_collector()  # as radmon serve, which answers the map, runs
            results = run_queries(store, args)
            document["results"] = results
        finally:
            store.close()
    document["load_at_end"] = load_average()
    print(f"load average at the end: {document['load_at_end']}")
    write_json(args.json, document)


def run_queries(store: Store, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time every query, print the table, then the plans of the misses (or all, --explain)."""
    results = []
    print(f"{'query':<34} {'median ms':>10} {'p95 ms':>9} {'target':>9}  result")
    items = queries(store, args.stations, args.days)
    for item in items:
        summary = summarize_ms(
            time_calls(item["call"], args.warmup, args.reps, item.get("prepare"))
        )
        verdict = "PASS" if summary["p95_ms"] < item["target_ms"] else "MISS"
        results.append({"query": item["name"], "target_ms": item["target_ms"], **summary})
        results[-1]["result"] = verdict
        print(
            f"{item['name']:<34} {summary['median_ms']:>10.1f} {summary['p95_ms']:>9.1f} "
            f"{'< ' + fmt_int(item['target_ms']):>9}  {verdict}",
            flush=True,
        )
    print("(a query PASSes when its p95 is under the target; every answer was checked)\n")
    for item in items:
        verdict = next(r["result"] for r in results if r["query"] == item["name"])
        if verdict == "MISS" or args.explain:
            print(f"---- EXPLAIN (ANALYZE, BUFFERS) for {item['name']} ({verdict}) ----")
            print("\n".join(explain(store, item["call"], item.get("prepare"))), flush=True)
    return results


if __name__ == "__main__":
    main()
