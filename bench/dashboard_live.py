"""Alarm latency with 50 live maps open: does the map's polling slow the alert path?

``bench.alerting_latency`` as it is (a breaching reading on MQTT → the SMS gateway double,
``radmon serve`` on PostgreSQL under 1,000 background readings/s), run twice in one process
with the same sizes: once alone, once with 50 map clients polling the same node. The clients
are what 50 open maps do: each signed in with its own session, each asking
``GET /api/v1/stations`` with If-None-Match every poll interval of the page (``POLL_MS``), at
its own phase; all 50 are async httpx clients in one process of their own, started (and every
one signed in) before the alert benchmark's warm-up. Under 1,000 readings/s the newest reading
of some station changes between any two polls, so nearly every poll is a full 200 answer.

    python -m bench.dashboard_live [--clients 50] [--breaches 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import queue
import random
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench import alerting_latency
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
from bench.dashboard_common import NODES, add_user, alogin
from dashboard.pages import POLL_MS


async def _client(
    k: int, base: str, poll_s: float, stop: asyncio.Event, ready: list[int], out: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await asyncio.sleep(k * 0.05)  # sign in one after another, as people arrive
        await alogin(client, base)
        ready.append(k)
        etag: str | None = None
        start = time.monotonic() + random.Random(k).uniform(0, poll_s)
        tick = 0
        while not stop.is_set():
            due = start + tick * poll_s
            tick += 1
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, due - time.monotonic()))
                break
            except TimeoutError:
                pass
            headers = {"If-None-Match": etag} if etag else {}
            began = time.perf_counter()
            try:
                answer = await client.get("/api/v1/stations", headers=headers)
            except httpx.HTTPError:
                out["errors"] += 1
                continue
            out["latency_s"].append(time.perf_counter() - began)
            out["status"][answer.status_code] = out["status"].get(answer.status_code, 0) + 1
            out["bytes"] += len(answer.content)
            if answer.status_code == 200:
                etag = answer.headers.get("ETag")
            if time.monotonic() > due + poll_s:
                out["late"] += 1  # the answer took longer than a whole poll interval


async def _clients(base: str, n: int, poll_s: float, stop_flag: Any, report: Any) -> None:
    stop = asyncio.Event()
    ready: list[int] = []
    out: dict[str, Any] = {"latency_s": [], "status": {}, "bytes": 0, "errors": 0, "late": 0}
    tasks = [asyncio.create_task(_client(k, base, poll_s, stop, ready, out)) for k in range(n)]
    announced = False
    started = time.monotonic()
    while not stop_flag.is_set():
        if not announced and len(ready) == n:
            report.put({"ready": True, "sign_in_s": round(time.monotonic() - started, 1)})
            announced = True
        if any(t.done() and t.exception() for t in tasks):
            break
        await asyncio.sleep(0.1)
    stop.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    report.put({**out, "failures": failures[:5], "seconds": time.monotonic() - started})


def clients_process(base: str, n: int, poll_s: float, stop_flag: Any, report: Any) -> None:
    """The 50 map clients, in a process of their own (not sharing a GIL with the timing)."""
    asyncio.run(_clients(base, n, poll_s, stop_flag, report))


@contextmanager
def live_maps(config: Path, web_port: int, n: int, poll_s: float) -> Iterator[dict[str, Any]]:
    """*n* signed-in map clients polling the node until the block ends; their figures after."""
    add_user(config)
    spawn = mp.get_context("spawn")
    stop_flag = spawn.Event()
    report: Any = spawn.Queue()
    base = f"http://127.0.0.1:{web_port}"
    process = spawn.Process(
        target=clients_process, args=(base, n, poll_s, stop_flag, report), daemon=True
    )
    process.start()
    stats: dict[str, Any] = {"clients": n, "poll_s": poll_s}
    try:
        first = report.get(timeout=180)
        if not first.get("ready"):
            raise RuntimeError(f"the map clients did not start: {first.get('failures')}")
        stats["sign_in_s"] = first["sign_in_s"]
        print(f"{n} map clients signed in ({first['sign_in_s']} s), polling every {poll_s:g} s")
        yield stats
    finally:
        stop_flag.set()
        try:
            found = report.get(timeout=60)
        except queue.Empty:
            found = {"failures": ["the clients sent no figures"]}
        process.join(30)
        if process.is_alive():
            process.terminate()
        latency = found.pop("latency_s", [])
        stats.update(found)
        stats["polls"] = len(latency)
        if latency:
            ms = [s * 1000 for s in latency]
            stats["poll_ms"] = {
                "p50": round(percentile(ms, 50), 1),
                "p95": round(percentile(ms, 95), 1),
                "p99": round(percentile(ms, 99), 1),
                "max": round(max(ms), 1),
            }


def one_run(args: argparse.Namespace, with_clients: bool, node: str) -> dict[str, Any]:
    latency_args = alerting_latency.parse_args(
        [
            "--breaches",
            str(args.breaches),
            "--rate",
            str(args.rate),
            "--background-stations",
            str(args.background_stations),
            "--warmup",
            str(args.warmup),
            "--probes",
            str(args.probes),
            "--pg",
            args.pg,
        ]
    )

    def during(config: Path, web_port: int) -> Any:
        return live_maps(config, web_port, args.clients, args.poll_s)

    with throwaway_database(args.pg) as url, tempfile.TemporaryDirectory() as tmp:
        return alerting_latency.run(
            latency_args,
            url,
            args.mqtt_host,
            args.mqtt_port,
            Path(tmp),
            during=during if with_clients else None,
            serve=NODES[node],
        )


def report(runs: list[dict[str, Any]]) -> None:
    print()
    head = f"{'run':<28} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'sent':>7}"
    print(f"{head} {'MQTT p50/p99 ms':>16} {'serve RSS':>10}")
    for item in runs:
        lat, rtt = item["result"].get("latency", {}), item["result"].get("mqtt_rtt", {})
        if not lat:
            print(f"{item['name']:<28} no latency figures")
            continue
        sent = f"{item['result'].get('detected')}/{item['result'].get('breaches')}"
        ceiling = f"{rtt.get('p50_ms')}/{rtt.get('p99_ms')}"
        print(
            f"{item['name']:<28} {lat['p50_ms']:>8.1f} {lat['p90_ms']:>8.1f} {lat['p99_ms']:>8.1f} "
            f"{lat['max_ms']:>8.1f} {sent:>7} {ceiling:>16} "
            f"{item['result'].get('serve_pid_rss_mb')!s:>7} MB"
        )
    for item in runs:
        during = item["result"].get("during")
        if not during:
            continue
        polls = during.get("polls", 0)
        seconds = during.get("seconds") or 1
        p = during.get("poll_ms", {})
        print()
        print(
            f"{item['name']}: {polls:,} polls in {seconds:.0f} s ({polls / seconds:.1f}/s) by "
            f"{during['clients']} clients; answers {during.get('status')}, "
            f"{fmt_int(during.get('bytes', 0) / seconds)} bytes/s; errors {during.get('errors')}, "
            f"answers slower than a poll interval {during.get('late')}"
        )
        if p:
            print(
                f"  poll latency: p50 {p['p50']} ms, p95 {p['p95']} ms, p99 {p['p99']} ms, "
                f"max {p['max']} ms"
            )
        if during.get("failures"):
            print(f"  client failures: {during['failures']}")
    alone = [r for r in runs if not r["with_clients"] and r["result"].get("latency")]
    loaded = [r for r in runs if r["with_clients"] and r["result"].get("latency")]
    if alone:
        a = alone[-1]["result"]["latency"]
        print()
        for item in loaded:
            b = item["result"]["latency"]
            print(
                f"{item['name']} / alone: p50 {b['p50_ms'] / a['p50_ms']:.2f}×, "
                f"p99 {b['p99_ms'] / a['p99_ms']:.2f}×; alert target p99 ≤ 2,000 ms with "
                f"every breach delivered: "
                f"{'MET' if b['p99_ms'] <= 2000 and not item['result'].get('missed') else 'MISSED'}"
            )
    for item in runs:
        hits = item["result"].get("serve_log_trouble") or []
        print(f"{item['name']}: serve log {len(hits)} warning/error line(s)")
        for line in hits[:10]:
            print(f"  | {line}")
    print(f"load average at the end: {load_average()}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard_live", description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--poll-s", type=float, default=POLL_MS / 1000, help="seconds between a client's polls"
    )
    parser.add_argument("--breaches", type=int, default=50)
    parser.add_argument("--rate", type=float, default=1000, help="background readings/s")
    parser.add_argument("--background-stations", type=int, default=1000)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=1, help="rounds of the runs below")
    parser.add_argument(
        "--nodes",
        default="radmon",
        help="comma-separated: radmon (the node as committed), proposed (with the stations "
        "route proposed for dashboard/api.py), proposed-gc (and gc.freeze() after startup); "
        "the clients run against each in turn",
    )
    parser.add_argument("--mqtt-host", default="127.0.0.1")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--pg", default=ADMIN_URL)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.breaches, args.rate, args.background_stations = 5, 5, 200, 100
        args.warmup, args.probes = 3.0, 40
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    stop_on_sigterm()
    facts = machine_facts(args.pg)
    print_header(
        "alarm latency with live maps polling the same node (radmon serve, PostgreSQL)",
        [
            f"bench.alerting_latency: {args.breaches} emergency breaches 1 s apart on MQTT → "
            f"SMS gateway double; {fmt_int(args.rate)} background readings/s from "
            f"{fmt_int(args.background_stations)} stations; {args.warmup:g} s warm-up",
            f"map clients: {args.clients} async httpx clients in their own process, each "
            f"signed in, GET /api/v1/stations with If-None-Match every {args.poll_s:g} s "
            "(the page's poll interval), phases spread over the interval",
            f"{args.pairs} round(s) of runs in this order: alone, then with the clients against "
            f"each node of {args.nodes}; a fresh database and node for each run",
            "ceiling: each run's raw MQTT round trip under the same load (as alerting_latency)",
        ],
        facts,
    )
    started = time.perf_counter()
    runs = []
    plan = [(False, "radmon")] + [(True, node) for node in args.nodes.split(",")]
    for pair in range(args.pairs):
        for with_clients, node in plan:
            name = f"with {args.clients} maps, {node}" if with_clients else "alone"
            if args.pairs > 1:
                name += f" #{pair + 1}"
            print(f"-- {name}")
            result = one_run(args, with_clients, node)
            runs.append(
                {"name": name, "with_clients": with_clients, "node": node, "result": result}
            )
    report(runs)
    print(f"whole run {time.perf_counter() - started:.0f} s; throwaway databases dropped")
    write_json(args.json, {"machine": facts, "args": vars(args), "runs": runs})


if __name__ == "__main__":
    main()
