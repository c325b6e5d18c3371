"""Alarm latency end to end: a breaching reading published on MQTT → the SMS gateway has it.

Everything on the path is real: Mosquitto, ``radmon serve`` in its own process (MQTT ingest,
PostgreSQL, the streaming detection engine, the alerting planner and its outbox dispatcher)
and an HTTP SMS gateway double in this process, so the publish time and the gateway's receive
time come from one clock. A background publisher (its own process) sends normal readings at a
steady rate throughout. Each breach is one reading of 150,000 nSv/h (an emergency by the
default absolute levels, sent without the grouping waits) on a station that has not reported
yet, so each one opens a new alarm in its own alerting group (``group_by: [station_id]``). The
ceiling is the raw MQTT round trip (publish → a subscriber here receives) on the same broker,
under the same background load, in the same run.

    python -m bench.alerting_latency [--breaches 50] [--rate 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import queue
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psycopg
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from alerting.gateway_double import GatewayDouble
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
from radmon.config import load_settings
from tests.broker import Broker, free_port, prepare_session

BREACH_NSV_H = 150_000.0
PHONE = "+84901234567"
_METRIC = re.compile(r"^(radmon_mqtt_[a-z_]+) (\S+)$", re.M)
# serve log lines worth showing: errors, warnings, tracebacks (uvicorn's access log is off)
_TROUBLE = re.compile(r"Traceback|ERROR|CRITICAL|WARNING|Exception|FAILED", re.I)


# -- the background load (its own process, so it does not share this process's GIL) ----------


def background(
    host: str,
    port: int,
    prefix: str,
    stations: Sequence[str],
    rate: float,
    batch: int,
    max_s: float,
    stop: Any,
    result: Any,
) -> None:
    """Publish ~*rate* readings/s of normal background (~100 nSv/h) for *stations*, QoS 1.

    Each station reports once a cycle, stamped with the current whole second (at least one
    more than its last, so every reading is new to the store and the engine); with *batch* > 1
    each station sends an array of its last *batch* readings every *batch* cycles, stations
    staggered over the cycles. A cycle lasts ``len(stations) / rate`` seconds, cut into ten
    slices so the load is even. Stops at *stop* or after *max_s* seconds, whichever is first.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    rng = random.Random(7)
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    level = {sid: rng.uniform(70, 140) for sid in stations}
    pending: dict[str, list[dict[str, Any]]] = {sid: [] for sid in stations}
    cycle_s = len(stations) / rate
    slices = 10
    per_slice = -(-len(stations) // slices)
    stamp = int(time.time()) - 1
    started = time.monotonic()
    readings = messages = behind = 0
    infos = []
    cycle = 0
    while not stop.is_set() and time.monotonic() - started < max_s:
        stamp = max(stamp + 1, int(time.time()))  # strictly increasing per station
        for k in range(slices):
            due = started + cycle * cycle_s + k * cycle_s / slices
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -cycle_s:
                behind += 1
            for i in range(k * per_slice, min((k + 1) * per_slice, len(stations))):
                sid = stations[i]
                value = round(rng.gauss(level[sid], 0.08 * level[sid]), 1)
                pending[sid].append({"time": stamp, "dose_rate": value, "unit": "nSv/h"})
                if (cycle + i) % batch == batch - 1:
                    items, pending[sid] = pending[sid], []
                    body = items[0] if batch == 1 else items
                    info = client.publish(f"{prefix}/{sid}/dose", json.dumps(body), qos=1)
                    infos.append(info)
                    readings += len(items)
                    messages += 1
        cycle += 1
        if len(infos) > 20_000:  # keep the list short: the broker acknowledges as we go
            infos = [i for i in infos if not i.is_published()]
    elapsed = time.monotonic() - started
    unacked = 0
    for info in infos:
        info.wait_for_publish(timeout=30)
        unacked += not info.is_published()
    client.disconnect()
    client.loop_stop()
    result.put(
        {
            "readings": readings,
            "messages": messages,
            "seconds": elapsed,
            "rate": readings / elapsed if elapsed else 0.0,
            "unacked": unacked,
            "cycles": cycle,
            "late_slices": behind,
        }
    )


# -- the raw MQTT round trip (the ceiling) ----------------------------------------------------


class Probe:
    """A subscriber and a publisher on the broker: how long publish → receive takes."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.topic = topic
        self.received: dict[int, float] = {}
        self.cond = threading.Condition()
        ready = threading.Event()
        self.sub = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.sub.on_subscribe = lambda *_: ready.set()
        self.sub.on_message = self._on_message
        self.sub.connect(host, port)
        self.sub.loop_start()
        self.sub.subscribe(topic, qos=1)
        if not ready.wait(10):
            raise RuntimeError("the probe subscriber did not subscribe")
        self.pub = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.pub.connect(host, port)
        self.pub.loop_start()

    def _on_message(self, _c: object, _u: object, message: paho.MQTTMessage) -> None:
        at = time.time()
        with self.cond:
            self.received[int(message.payload)] = at
            self.cond.notify_all()

    def run(self, count: int, spacing_s: float) -> list[float]:
        sent: dict[int, float] = {}
        for n in range(count):
            sent[n] = time.time()
            self.pub.publish(self.topic, str(n).encode(), qos=1)
            time.sleep(spacing_s)
        with self.cond:
            self.cond.wait_for(lambda: len(self.received) >= count, timeout=10)
            got = dict(self.received)
        return [got[n] - sent[n] for n in sorted(sent) if n in got]

    def close(self) -> None:
        for client in (self.pub, self.sub):
            client.disconnect()
            client.loop_stop()


# -- radmon serve -----------------------------------------------------------------------------


def metrics(web_port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {name: float(value) for name, value in _METRIC.findall(text)}


def radmon(*args: str, config: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "radmon", *args, "--config", str(config)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"radmon {' '.join(args)} failed: {done.stderr.strip()}")


def write_config(path: Path, url: str, mqtt: dict[str, Any], web_port: int, send_url: str) -> None:
    config = {
        "database": {"url": url},
        "mqtt": mqtt,
        "web": {"port": web_port},
        "detection": {},  # defaults: 1,000 nSv/h alert, 100,000 nSv/h emergency
        "alerting": {
            "channels": [
                {"name": "sms-gateway", "type": "sms", "provider": "http", "url": send_url}
            ],
            "contacts": [{"name": "Duty officer", "phone": PHONE}],
            "routes": [
                {
                    "severities": ["alert", "emergency"],
                    "contacts": ["Duty officer"],
                    "channels": ["sms-gateway"],
                    # one group per station: each breach is its own message (the default,
                    # [category], would put every station's alarm into one growing message)
                    "group_by": ["station_id"],
                }
            ],
        },
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def wait_ready(node: subprocess.Popen[bytes], web_port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if node.poll() is not None:
            raise RuntimeError(f"radmon serve exited with status {node.returncode}")
        try:
            if metrics(web_port).get("radmon_mqtt_connected") == 1:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("radmon serve did not connect to the broker in time")
        time.sleep(0.2)


def trouble(log_path: Path, limit: int = 40) -> list[str]:
    """The serve log's warnings, errors and tracebacks (the first *limit* lines of them)."""
    lines = log_path.read_text(errors="replace").splitlines()
    hits = []
    for n, line in enumerate(lines):
        if _TROUBLE.search(line):
            hits.append(line)
            if line.startswith("Traceback"):
                hits.extend(lines[n + 1 : n + 25])
        if len(hits) >= limit:
            break
    return hits


def stages(url: str, breach_ids: Sequence[str], t0: dict[str, float]) -> dict[str, dict]:
    """Where the time went, per breach, from the store's own time stamps (seconds after the
    publish; each is taken when that step starts): the alarm written (ingest, commit,
    detection), the SMS queued in the outbox (the planner's clock), claimed by the
    dispatcher, marked sent."""
    out: dict[str, dict[str, float]] = {sid: {} for sid in breach_ids}
    with psycopg.connect(url) as conn:
        for sid, value in conn.execute(
            "SELECT station_id, min(extract(epoch FROM raised_at)) FROM alarms "
            "WHERE station_id = ANY(%s) AND severity = 'emergency' GROUP BY station_id",
            [list(breach_ids)],
        ):
            out[sid]["raised"] = float(value) - t0[sid]
        for sid, *values in conn.execute(
            "SELECT a.station_id, extract(epoch FROM n.created_at), "
            "extract(epoch FROM n.claimed_at), extract(epoch FROM n.sent_at) "
            "FROM notifications n JOIN alarms a ON a.id = (n.alarm_ids->>0)::int "
            "WHERE a.station_id = ANY(%s)",
            [list(breach_ids)],
        ):
            for name, value in zip(("queued", "claimed", "sent"), values, strict=True):
                if value is not None:
                    out[sid][name] = float(value) - t0[sid]
    return out


def summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p90_ms": round(percentile(values, 90) * 1000, 1),
        "p99_ms": round(percentile(values, 99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def run(
    args: argparse.Namespace,
    url: str,
    host: str,
    port: int,
    workdir: Path,
    during: Callable[[Path, int], AbstractContextManager[dict[str, Any]]] | None = None,
    serve: Sequence[str] = ("radmon", "serve"),
) -> dict[str, Any]:
    """One run; *during* (given the node's configuration file and web port) is entered once the
    node is ready, before the warm-up, and left when the run ends: more load on the node while
    it is measured (``bench.dashboard_live``'s map clients). It yields a dict, kept as
    ``result["during"]``. *serve* is the module (and arguments) the node runs under
    ``python -m``."""
    tag = secrets.token_hex(4)
    prefix = f"bench-{tag}/v1"
    background_ids = [f"BG{i:05d}" for i in range(args.background_stations)]
    breach_ids = [f"BR{i:05d}" for i in range(args.breaches)]
    stations_csv = workdir / "stations.csv"
    with stations_csv.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["station_id", "name", "lat", "lon"])
        for n, sid in enumerate(background_ids + breach_ids):
            writer.writerow([sid, f"Bench {sid}", 20.9 + (n % 40) * 0.01, 107.0 + n // 40 * 0.01])

    double = GatewayDouble().start()
    node: subprocess.Popen[bytes] | None = None
    stop_bg = mp.get_context("spawn").Event()
    bg_result: Any = mp.get_context("spawn").Queue()
    bg: Any = None
    probe: Probe | None = None
    breacher: paho.Client | None = None
    log_path = workdir / "serve.log"
    result: dict[str, Any] = {"topic_prefix": prefix}
    extra = ExitStack()
    try:
        web_port = free_port()
        mqtt = {
            "host": host,
            "port": port,
            "topic_prefix": prefix,
            "client_id": f"radmon-bench-{tag}",
            "session_expiry_s": 60,  # the broker forgets this run's session a minute after it
        }
        config = workdir / "serve.yaml"
        write_config(config, url, mqtt, web_port, double.send_url)
        began = time.perf_counter()
        radmon("db", "upgrade", config=config)
        radmon("stations", "import", str(stations_csv), config=config)
        prepare_session(load_settings(config))
        with log_path.open("wb") as log:
            node = subprocess.Popen(
                [sys.executable, "-m", *serve, "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_ready(node, web_port)
        print(f"serve ready after {time.perf_counter() - began:.1f} s (upgrade, import, start)")
        if during is not None:
            result["during"] = extra.enter_context(during(config, web_port))

        budget = args.warmup + args.probes * args.probe_spacing + args.breaches * args.spacing
        bg = mp.get_context("spawn").Process(
            target=background,
            args=(
                host,
                port,
                prefix,
                background_ids,
                float(args.rate),
                args.background_batch,
                budget + 60,
                stop_bg,
                bg_result,
            ),
            daemon=True,
        )
        bg.start()
        before = metrics(web_port).get("radmon_mqtt_readings_stored_total", 0.0)
        time.sleep(args.warmup)
        stored = metrics(web_port).get("radmon_mqtt_readings_stored_total", 0.0) - before
        print(f"background warm-up: {fmt_int(stored / args.warmup)} readings/s stored")

        probe = Probe(host, port, f"bench-{tag}/probe")
        rtt = probe.run(args.probes, args.probe_spacing)
        result["mqtt_rtt"] = summary(rtt)
        result["mqtt_rtt"]["lost"] = args.probes - len(rtt)
        print(
            f"MQTT round trip under load: p50 {result['mqtt_rtt']['p50_ms']} ms, "
            f"p99 {result['mqtt_rtt']['p99_ms']} ms ({len(rtt)}/{args.probes} received)"
        )

        breacher = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        breacher.connect(host, port)
        breacher.loop_start()
        t0: dict[str, float] = {}
        for n, sid in enumerate(breach_ids):
            due = time.monotonic() + args.spacing
            body = json.dumps(
                {"time": round(time.time(), 3), "dose_rate": BREACH_NSV_H, "unit": "nSv/h"}
            )
            t0[sid] = time.time()
            breacher.publish(f"{prefix}/{sid}/dose", body, qos=1)
            if n % 10 == 9:
                print(f"  {n + 1} breaches published, {len(double.delivered)} SMS received")
            time.sleep(max(0.0, due - time.monotonic()))
        double.wait_for(len(breach_ids), timeout=args.wait)
        time.sleep(2)  # room for a duplicate or a stray message to show up
        stop_bg.set()
        bg.join(60)
        try:
            bg_stats = bg_result.get(timeout=30)
        except queue.Empty:
            bg_stats = {}
        result["background"] = bg_stats
        published = bg_stats.get("readings", 0) + len(breach_ids)
        deadline = time.monotonic() + 30
        counters = metrics(web_port)
        while counters.get("radmon_mqtt_readings_stored_total", 0) < published:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
            counters = metrics(web_port)
        result["ingest"] = {
            "published_readings": published,
            "stored_readings": counters.get("radmon_mqtt_readings_stored_total"),
            "new_readings": counters.get("radmon_mqtt_readings_new_total"),
            "rejected": counters.get("radmon_mqtt_rejected_total"),
            "batches": counters.get("radmon_mqtt_batches_total"),
        }

        delivered = double.delivered
        latency: dict[str, float] = {}
        unmatched, multi = [], []
        per_station: dict[str, int] = {}
        for record in delivered:
            named = [sid for sid in breach_ids if f"({sid})" in record["text"]]
            if not named:
                unmatched.append(record["text"])
                continue
            if len(named) > 1:
                multi.append(record["text"])
            for sid in named:
                per_station[sid] = per_station.get(sid, 0) + 1
                latency.setdefault(sid, record["received_at"] - t0[sid])
        values = [latency[sid] for sid in breach_ids if sid in latency]
        result["latency"] = summary(values)
        result["breaches"] = len(breach_ids)
        result["detected"] = len(values)
        result["sms_received"] = len(delivered)
        result["gateway_duplicates"] = double.duplicates
        result["stations_in_several_sms"] = sum(1 for n in per_station.values() if n > 1)
        result["sms_naming_several_breaches"] = len(multi)
        result["sms_unrelated"] = unmatched[:5]
        result["missed"] = [sid for sid in breach_ids if sid not in latency]
        steps = stages(url, breach_ids, t0)
        result["stages"] = {
            name: summary([v[name] for v in steps.values() if name in v])
            for name in ("raised", "queued", "claimed", "sent")
        }
        result["per_breach"] = [
            {
                "station_id": sid,
                "published_at": round(t0[sid], 3),
                "latency_s": round(latency[sid], 4) if sid in latency else None,
                **{name: round(value, 4) for name, value in steps[sid].items()},
            }
            for sid in breach_ids
        ]
        result["first_sms"] = delivered[0]["text"] if delivered else None
        result["serve_pid_rss_mb"] = peak_rss_mb(node.pid)
    finally:
        extra.close()
        stop_bg.set()
        if bg is not None:
            bg.join(30)
            if bg.is_alive():
                bg.terminate()
        if breacher is not None:
            breacher.disconnect()
            breacher.loop_stop()
        if probe is not None:
            probe.close()
        if node is not None and node.poll() is None:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(30)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait(10)
        double.stop()
    result["serve_exit"] = node.returncode if node is not None else None
    result["serve_log_trouble"] = trouble(log_path)
    return result


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return float("nan")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.alerting_latency", description=__doc__)
    parser.add_argument("--breaches", type=int, default=50, help="breaches, one per new station")
    parser.add_argument("--spacing", type=float, default=1.0, help="seconds between breaches")
    parser.add_argument("--rate", type=float, default=1000, help="background readings/s")
    parser.add_argument(
        "--background-stations", type=int, default=1000, help="stations sending the background"
    )
    parser.add_argument(
        "--background-batch",
        type=int,
        default=1,
        help="background readings per message (1: one message per reading)",
    )
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of load first")
    parser.add_argument("--probes", type=int, default=200, help="raw MQTT round trips")
    parser.add_argument("--probe-spacing", type=float, default=0.05)
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for SMS")
    parser.add_argument("--mqtt-host", default="127.0.0.1")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    parser.add_argument(
        "--private-broker", action="store_true", help="start a private Mosquitto instead"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--pg", default=ADMIN_URL)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    if args.quick:
        args.breaches, args.rate, args.background_stations = 5, 200, 100
        args.warmup, args.probes = 3.0, 40
    if args.background_stations < 1 or args.rate <= 0 or args.background_batch < 1:
        parser.error("--background-stations, --rate and --background-batch must be positive")
    return args


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    lat, rtt = result.get("latency", {}), result.get("mqtt_rtt", {})
    bg = result.get("background", {})
    print()
    print(
        f"background: {fmt_int(bg.get('readings', 0))} readings in {fmt_int(bg.get('messages', 0))}"
        f" messages over {bg.get('seconds', 0):.1f} s = {fmt_int(bg.get('rate', 0))} readings/s "
        f"(unacked {bg.get('unacked')}, late slices {bg.get('late_slices')})"
    )
    ing = result.get("ingest", {})
    print(
        f"ingest: published {fmt_int(ing.get('published_readings', 0))}, stored "
        f"{fmt_int(ing.get('stored_readings') or 0)} (new {fmt_int(ing.get('new_readings') or 0)}"
        f"), rejected {fmt_int(ing.get('rejected') or 0)}"
    )
    print(
        f"breaches: {result.get('breaches')}, detected and delivered {result.get('detected')}, "
        f"SMS received {result.get('sms_received')}, gateway duplicates "
        f"{result.get('gateway_duplicates')}, stations in several SMS "
        f"{result.get('stations_in_several_sms')}, SMS naming several breaches "
        f"{result.get('sms_naming_several_breaches')}"
    )
    if result.get("missed"):
        print(f"missed: {', '.join(result['missed'])}")
    if result.get("sms_unrelated"):
        print(f"unrelated SMS: {result['sms_unrelated']}")
    print()
    print(f"{'':<34} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'n':>4}")

    def row(name: str, s: dict[str, float]) -> None:
        if s:
            print(
                f"{name:<34} {s['p50_ms']:>8.1f} {s['p90_ms']:>8.1f} {s['p99_ms']:>8.1f} "
                f"{s['max_ms']:>8.1f} {s['n']:>4}"
            )

    row("publish → SMS gateway received", lat)
    for name, label in (
        ("raised", "  publish → alarm raised (store)"),
        ("queued", "  publish → SMS queued (outbox)"),
        ("claimed", "  publish → claimed (dispatcher)"),
        ("sent", "  publish → marked sent"),
    ):
        row(label, result.get("stages", {}).get(name, {}))
    row("ceiling: raw MQTT round trip", rtt)
    if lat and rtt:
        p99_ok = lat["p99_ms"] <= 2000 and result.get("detected") == result.get("breaches")
        print()
        print(
            f"ratio to the raw MQTT round trip: p50 {lat['p50_ms'] / rtt['p50_ms']:.0f}×, "
            f"p99 {lat['p99_ms'] / rtt['p99_ms']:.0f}×"
        )
        print(
            f"target p99 ≤ 2,000 ms with every breach delivered once: "
            f"{'MET' if p99_ok else 'MISSED'} (p99 {lat['p99_ms']:,.0f} ms)"
        )
    slowest = sorted(
        (b for b in result.get("per_breach", []) if b.get("latency_s") is not None),
        key=lambda b: -b["latency_s"],
    )[:3]
    for b in slowest:
        steps = ", ".join(
            f"{name} {b[name] * 1000:.0f}" for name in ("raised", "queued", "claimed") if name in b
        )
        at = time.strftime("%H:%M:%S", time.gmtime(b["published_at"]))
        print(f"slow: {b['station_id']} at {at}Z: {b['latency_s'] * 1000:.0f} ms ({steps} ms)")
    print(f"serve peak RSS {result.get('serve_pid_rss_mb')} MB, exit {result.get('serve_exit')}")
    if result.get("first_sms"):
        print(f"first SMS: {result['first_sms']!r}")
    hits = result.get("serve_log_trouble") or []
    print(f"serve log: {len(hits)} warning/error line(s)" + (":" if hits else ""))
    for line in hits:
        print(f"  | {line}")
    print(f"load average at the end: {load_average()}")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    stop_on_sigterm()
    facts = machine_facts(args.pg)
    shape = (
        "1 reading per message"
        if args.background_batch == 1
        else f"arrays of {args.background_batch} readings per message"
    )
    where = "a private Mosquitto" if args.private_broker else f"{args.mqtt_host}:{args.mqtt_port}"
    print_header(
        "alarm latency: breaching reading on MQTT → SMS gateway (radmon serve, PostgreSQL)",
        [
            f"{args.breaches} breaches of {fmt_int(BREACH_NSV_H)} nSv/h (emergency), "
            f"{args.spacing:g} s apart, each on a station that has not reported yet; "
            "latency = gateway double's receive time − time just before the publish",
            f"background: {fmt_int(args.rate)} readings/s of ~100 nSv/h from "
            f"{fmt_int(args.background_stations)} other stations, {shape}, QoS 1, "
            f"its own process; {args.warmup:g} s of it before the first measurement",
            f"broker {where}; radmon serve in its own process: detection defaults, one route "
            "(alert, emergency → Duty officer by SMS over HTTP), group_by [station_id]",
            f"ceiling: raw MQTT round trip, {args.probes} QoS 1 probes "
            f"{args.probe_spacing * 1000:g} ms apart under the same load, same broker",
        ],
        facts,
    )
    print(f"nproc: {os.cpu_count()}, CPU: {facts['cpu']}, PostgreSQL {facts['postgresql']}")
    started = time.perf_counter()
    with throwaway_database(args.pg) as url, tempfile.TemporaryDirectory() as tmp:
        broker = None
        host, port = args.mqtt_host, args.mqtt_port
        if args.private_broker:
            broker = Broker(Path(tmp) / "broker")
            broker.start()
            host, port = broker.host, broker.port
        try:
            result = run(args, url, host, port, Path(tmp))
        finally:
            if broker is not None:
                broker.stop()
    result["seconds"] = round(time.perf_counter() - started, 1)
    report(result, args)
    print(f"whole run {result['seconds']:.0f} s; throwaway database dropped")
    write_json(args.json, {"machine": facts, "args": vars(args), "result": result})


if __name__ == "__main__":
    main()
