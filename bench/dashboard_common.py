"""What the dashboard benchmarks share: a province on PostgreSQL, a web node, a signed-in client.

The province is what the duty officer's map shows at its busiest: 1,000 ten-minute stations
with the last day of readings (generated server-side, ending now, so they count as online), a
few that went quiet hours ago or never reported, and open alarms of every severity. The web
node is ``radmon serve`` in its own process with MQTT off: the same app, uvicorn and threadpool
a real node runs. Clients sign in through the login form, as a browser does, so every poll pays
for its session lookup.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml

from bench.store_queries import ROLLUP_SQL
from radmon.config import load_settings
from radmon.models import Alarm, Category, Severity, Station
from radmon.store import Store

# Readings of every station at every step, the newest at %(end)s; values 80–120 nSv/h.
FILL_SQL = """
    INSERT INTO readings (station_id, time, dose_rate_nsv_h)
    SELECT 'BQ' || lpad(s::text, 5, '0'),
           %(end)s::timestamptz - k * make_interval(secs => %(step)s),
           80 + 40 * random()
    FROM generate_series(0, %(k)s - 1) AS k, generate_series(0, %(n)s - 1) AS s
"""
USER, PASSWORD = "bench-officer", "bench-password-not-secret"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# Of every 100 stations: this many went quiet 6 h ago (offline), this many never reported.
OFFLINE_PER_100, SILENT_PER_100 = 2, 1
# Open alarms: one per this many stations, severities in turn.
ALARM_EVERY = 25


def station_id(i: int) -> str:
    return f"BQ{i:05d}"


def make_stations(n: int, interval_s: int) -> list[Station]:
    """*n* stations spread over Quảng Ninh, reporting every *interval_s* seconds."""
    return [
        Station(
            station_id=station_id(i),
            name=f"Trạm {i} – bench",
            lat=20.75 + (i % 40) * 0.022,
            lon=106.45 + (i // 40) * 0.06,
            interval_s=interval_s,
            district="Bench",
        )
        for i in range(n)
    ]


def seed_province(
    url: str, n_stations: int, hours: int = 24, interval_s: int = 600
) -> dict[str, Any]:
    """Stations, *hours* of readings every *interval_s* ending now, rollups and open alarms.

    The stations' own interval is *interval_s* too, so they stay online (their newest reading
    younger than three intervals) for half an hour after seeding at the default ten minutes.
    """
    settings = load_settings(database={"url": url})
    store = Store.open(settings)
    started = time.perf_counter()
    try:
        store.upgrade()
        store.upsert_stations(make_stations(n_stations, interval_s))
        end = datetime.now(UTC).replace(microsecond=0)
        per_station = hours * 3600 // interval_s
        silent = [station_id(i) for i in range(n_stations) if i % 100 < SILENT_PER_100]
        offline = [
            station_id(i)
            for i in range(n_stations)
            if SILENT_PER_100 <= i % 100 < SILENT_PER_100 + OFFLINE_PER_100
        ]
        with psycopg.connect(url) as conn:
            conn.execute("SET synchronous_commit = off")
            conn.execute(
                FILL_SQL, {"n": n_stations, "k": per_station, "end": end, "step": interval_s}
            )
            conn.execute("DELETE FROM readings WHERE station_id = ANY(%s)", [silent])
            conn.execute(
                "DELETE FROM readings WHERE station_id = ANY(%s) AND time > %s",
                [offline, end - timedelta(hours=6)],
            )
            conn.commit()
            for table, bucket in (
                ("readings_hourly", "date_trunc('hour', time)"),
                ("readings_daily", "date_trunc('day', time, %(zone)s)"),
            ):
                conn.execute(
                    ROLLUP_SQL.format(table=table, bucket=bucket),
                    {"zone": settings.site.timezone},
                )
                conn.commit()
        severities = list(Severity)
        alarms = [
            Alarm(
                station_id=station_id(i),
                kind="threshold",
                category=Category.RADIOLOGICAL,
                severity=severities[(i // ALARM_EVERY) % len(severities)],
                opened_at=end - timedelta(minutes=30 + i % 60),
                peak_nsv_h=1500.0,
                baseline_nsv_h=100.0,
            )
            for i in range(0, n_stations, ALARM_EVERY)
        ]
        store.record_alarms(alarms)
    finally:
        store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {
        "stations": n_stations,
        "readings": (n_stations - len(silent)) * per_station,
        "silent": len(silent),
        "offline": len(offline),
        "open_alarms": len(alarms),
        "seconds": round(time.perf_counter() - started, 1),
    }


def write_web_config(path: Path, url: str, web_port: int, **extra: Any) -> None:
    """A node with MQTT and detection off: only the web part of ``radmon serve`` runs.

    (Detection would first warm up on the day of history, which is not what is measured.)
    """
    config: dict[str, Any] = {
        "database": {"url": url},
        "mqtt": {"enabled": False},
        "detection": {"enabled": False},
        "web": {"port": web_port, "tile_url": "http://127.0.0.1:9/tiles/{z}/{x}/{y}.png"},
        **extra,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def add_user(config: Path, name: str = USER, password: str = PASSWORD) -> None:
    """``radmon users add``, the password on stdin as an operator gives it."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "radmon",
            "users",
            "add",
            name,
            "--role",
            "viewer",
            "--config",
            str(config),
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"radmon users add failed: {done.stderr.strip()}")


def wait_http(url: str, timeout_s: float = 60, process: subprocess.Popen | None = None) -> None:
    """Until *url* answers 200 (the node is up and its database reachable)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the node exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer in {timeout_s:g} s")
        time.sleep(0.2)


# The node as committed; with the stations route proposed for dashboard/api.py; with that and
# gc.freeze() after startup (proposed for radmon/runtime.py).
NODES = {
    "radmon": ["radmon", "serve"],
    "proposed": ["bench.dashboard_node"],
    "proposed-gc": ["bench.dashboard_node", "--gc-freeze"],
}


@contextmanager
def web_node(
    config: Path, web_port: int, log_path: Path, node_kind: str = "radmon"
) -> Iterator[subprocess.Popen]:
    """``radmon serve --config CONFIG`` in its own process until the block ends."""
    with log_path.open("wb") as log:
        node = subprocess.Popen(
            [sys.executable, "-m", *NODES[node_kind], "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(f"http://127.0.0.1:{web_port}/healthz", process=node)
        yield node
    finally:
        if node.poll() is None:
            node.terminate()
            try:
                node.wait(30)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait(10)


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    if found is None:
        raise RuntimeError("the login form carries no CSRF token")
    return found.group(1)


def login(client: httpx.Client, base: str, name: str = USER, password: str = PASSWORD) -> None:
    """Sign *client* in through the login form; its cookie jar then holds the session."""
    form = client.get(f"{base}/login")
    answer = client.post(
        f"{base}/login",
        data={"name": name, "password": password, "csrf_token": _csrf(form.text), "next": "/"},
        headers={"Origin": base},
    )
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in failed: HTTP {answer.status_code}")


async def alogin(
    client: httpx.AsyncClient, base: str, name: str = USER, password: str = PASSWORD
) -> None:
    """``login`` for an async client."""
    form = await client.get(f"{base}/login")
    answer = await client.post(
        f"{base}/login",
        data={"name": name, "password": password, "csrf_token": _csrf(form.text), "next": "/"},
        headers={"Origin": base},
    )
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in failed: HTTP {answer.status_code}")


def latest_sql_ms(url: str, reps: int) -> list[float]:
    """The ceiling: the store's latest-per-station SQL alone, timed in psycopg (ms each)."""
    sql = (
        "SELECT s.*, r.time, r.dose_rate_nsv_h FROM stations s "
        "LEFT JOIN readings r ON r.station_id = s.station_id AND r.time = "
        "(SELECT max(n.time) FROM readings n WHERE n.station_id = s.station_id) "
        "ORDER BY s.station_id"
    )
    out = []
    with psycopg.connect(url) as conn:
        conn.execute(sql).fetchall()  # warm
        for _ in range(reps):
            started = time.perf_counter()
            conn.execute(sql).fetchall()
            conn.execute(
                "SELECT station_id, severity FROM alarms WHERE state = ANY(%s)",
                [["active_unack", "active_ack"]],
            ).fetchall()
            out.append((time.perf_counter() - started) * 1000)
    return out
