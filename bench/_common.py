"""What every benchmark needs: machine facts, a throwaway database, timing summaries.

A figure without the machine and the workload beside it cannot be compared with the next one,
so every benchmark prints both before its figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import signal
import statistics
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return float("nan")


def load_average() -> str:
    """The 1/5/15-minute load averages: a busy machine explains a slow figure."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine_facts(admin_url: str | None) -> dict[str, Any]:
    """CPU, cores, RAM, PostgreSQL and Python versions, and the load when the run started."""
    facts: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": round(_ram_gib(), 1),
        "python": platform.python_version(),
        "postgresql": None,
        "load_at_start": load_average(),
        "started_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
    }
    if admin_url:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            facts["postgresql"] = row[0] if row else None
    return facts


def machine_line(facts: dict[str, Any]) -> str:
    """One line naming the machine, as the docs quote it."""
    pg = f"PostgreSQL {facts['postgresql']}, " if facts.get("postgresql") else ""
    return (
        f"{facts['cpu']}, {facts['cores']} cores, {facts['ram_gib']} GiB RAM, {pg}"
        f"Python {facts['python']}"
    )


def print_header(title: str, workload: Sequence[str], facts: dict[str, Any]) -> None:
    """The block every benchmark prints first: what runs, where, and how busy the machine is."""
    print(f"== {title} ==")
    for line in workload:
        print(f"workload: {line}")
    print(f"machine:  {machine_line(facts)}")
    print(f"started:  {facts['started_utc']}, load average {facts['load_at_start']}")
    print(flush=True)


def stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so ``finally`` blocks drop the throwaway database."""

    def _raise(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)


def database_url(admin_url: str, name: str) -> str:
    """*admin_url* pointing at database *name* instead."""
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@contextmanager
def throwaway_database(admin_url: str = ADMIN_URL) -> Iterator[str]:
    """Create ``radmon_bench_<random>``, yield its URL, and drop it even on error."""
    name = f"radmon_bench_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def checkpoint(url: str) -> None:
    """Flush dirty pages first, so one phase does not pay for the previous one's writes."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (*q* in 0..100) of *values*."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Median, p95, min and max of timings given in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "median_ms": round(statistics.median(ms), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
    }


def write_json(target: str | None, document: dict[str, Any]) -> None:
    """Write *document* to *target* (``-`` for stdout); nothing when *target* is None."""
    if target is None:
        return
    text = json.dumps(document, indent=2, default=str)
    if target == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(target).write_text(text + "\n", encoding="utf-8")
        print(f"results written to {target}")


def fmt_int(value: float) -> str:
    """Thousands with commas, as the docs print them."""
    return f"{value:,.0f}"


def add_clock_spread(parser: argparse.ArgumentParser) -> None:
    """The ``--clock-spread S`` option of the benchmarks that can put stations on their own
    clocks (see :func:`clock_offsets`)."""
    parser.add_argument(
        "--clock-spread",
        type=int,
        default=0,
        metavar="S",
        help="each station reports a fixed 0..S s after the simulated times (not in step)",
    )


def clock_offsets(station_ids: Sequence[str], spread_s: int, seed: int) -> dict[str, int]:
    """Each station's fixed lateness in [0, *spread_s*) s, as real probes report on their own
    clocks and not at the simulator's common instants; empty when *spread_s* is 0."""
    if spread_s <= 0:
        return {}
    late = np.random.default_rng(seed).integers(0, spread_s, len(station_ids))
    return dict(zip(station_ids, late.tolist(), strict=True))
