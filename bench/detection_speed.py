"""How fast the detection engine judges readings: in a table, live, and ``radmon detect``.

Workloads (simulated provinces, 10-minute data, rain, events and faults on):
1. engine over an in-memory table (no file parsing): 40 stations × 60 days, and 1,000 stations
   × 10 days (the engine is vectorised over the stations of one step, so wider is cheaper),
   each in step and on the stations' own clocks (each station a fixed 0–599 s late, as real
   probes report);
2. streaming: ``Engine.feed`` with one time's Reading objects per call, as ``radmon serve``
   hands them over, in µs per reading;
3. ``radmon detect`` end to end (parse, judge, write) over a CSV of ``--detect-readings`` rows.
The ceiling beside each figure is one vectorised pass over the same arrays (a fixed threshold:
what a "mean + 20 nSv/h" rule costs), so the ratio says what the statistics cost on top.

    python -m bench.detection_speed [--detect-readings 10000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from bench._common import clock_offsets, fmt_int, machine_facts, print_header, write_json
from bench.detection import stations_of
from detectors import Engine, run_frame
from ingest import SimulationConfig, simulate, write_csvs

START = datetime(2026, 6, 1, tzinfo=UTC)
CLOCK_SPREAD_S = 600  # on own clocks: each station a fixed 0..599 s after the simulated times


def _scenario(stations: int, days: float, seed: int = 5):
    config = SimulationConfig(n_stations=stations, seed=seed, start=START)
    return simulate(config, days)


def _ceiling_s(frame) -> float:
    """One vectorised pass: sort by time, compare with a per-station threshold."""
    began = time.perf_counter()
    seconds = pd.DatetimeIndex(frame["time"]).as_unit("s").asi8
    codes, ids = pd.factorize(frame["station_id"], sort=True)
    order = np.argsort(seconds, kind="stable")
    dose = frame["dose_rate_nsv_h"].to_numpy()[order]
    threshold = np.full(len(ids), 120.0)
    _ = int((dose > threshold[codes[order]]).sum())
    return time.perf_counter() - began


def table_run(stations: int, days: float, clock_spread_s: int = 0) -> dict[str, float]:
    result = _scenario(stations, days)
    frame = result.readings
    if clock_spread_s:  # each station on its own clock
        late = clock_offsets(result.stations["station_id"].tolist(), clock_spread_s, stations)
        offsets = frame["station_id"].map(late)
        frame = frame.assign(time=frame["time"] + pd.to_timedelta(offsets, unit="s"))
    engine = Engine(
        None, stations_of(result.stations), site_timezone="Asia/Ho_Chi_Minh", clock=lambda: 4e9
    )
    began = time.perf_counter()
    changes = run_frame(engine, frame)
    elapsed = time.perf_counter() - began
    ceiling = _ceiling_s(frame)
    return {
        "stations": stations,
        "clock_spread_s": clock_spread_s,
        "readings": len(frame),
        "seconds": elapsed,
        "readings_per_s": len(frame) / elapsed,
        "us_per_reading": elapsed / len(frame) * 1e6,
        "ceiling_readings_per_s": len(frame) / ceiling,
        "alarm_changes": len(changes),
    }


def streaming_run(stations: int, days: float) -> dict[str, float]:
    """Engine.feed per time step with Reading objects (what serve does after each commit)."""
    from ingest import ProvinceSimulator

    sim = ProvinceSimulator(SimulationConfig(n_stations=stations, seed=6, start=START), days)
    engine = Engine(None, sim.stations, site_timezone="Asia/Ho_Chi_Minh", clock=lambda: 4e9)
    steps = round(days * 86400 / 600)
    batches = [sim.to_readings(sim.step()) for _ in range(steps)]
    began = time.perf_counter()
    for batch in batches:
        engine.feed(batch)
    elapsed = time.perf_counter() - began
    n = sum(len(b) for b in batches)
    return {
        "stations": stations,
        "readings": n,
        "us_per_reading": elapsed / n * 1e6,
        "ms_per_step": elapsed / steps * 1e3,
    }


def detect_run(readings: int, stations: int) -> dict[str, float]:
    days = readings / stations / 144
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        result = _scenario(stations, days, seed=7)
        write_csvs(result, folder / "r.csv", None, folder / "s.csv")
        n = len(result.readings)
        del result
        began = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "radmon",
                "detect",
                "--input",
                str(folder / "r.csv"),
                "--output",
                str(folder / "a.csv"),
                "--stations",
                str(folder / "s.csv"),
            ],
            check=True,
            capture_output=True,
        )
        elapsed = time.perf_counter() - began
    return {"stations": stations, "readings": n, "seconds": elapsed, "readings_per_s": n / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detect-readings", type=int, default=10_000_000)
    parser.add_argument("--detect-stations", type=int, default=1000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    facts = machine_facts(None)
    print_header(
        "detection engine speed",
        [
            "engine over in-memory tables: 40 stations × 60 days; 1,000 stations × 10 days; "
            "in step and on own clocks (0–599 s)",
            "streaming Engine.feed per time step: 40 and 1,000 stations × 2 days",
            f"radmon detect over {fmt_int(args.detect_readings)} readings "
            f"({args.detect_stations} stations)",
        ],
        facts,
    )
    document: dict[str, object] = {"machine": facts}
    sizes = ((40, 60), (1000, 10))
    tables = [table_run(n, days, spread) for n, days in sizes for spread in (0, CLOCK_SPREAD_S)]
    for row in tables:
        clocks = "own clocks" if row["clock_spread_s"] else "in step   "
        print(
            f"table  {row['stations']:>5} stations {clocks} {fmt_int(row['readings'])} readings  "
            f"{fmt_int(row['readings_per_s'])}/s ({row['us_per_reading']:.2f} µs each)  "
            f"ceiling {fmt_int(row['ceiling_readings_per_s'])}/s  "
            f"ratio {row['readings_per_s'] / row['ceiling_readings_per_s']:.3f}"
        )
    streams = [streaming_run(40, 2), streaming_run(1000, 2)]
    for row in streams:
        print(
            f"stream {row['stations']:>5} stations  {row['us_per_reading']:.1f} µs per reading  "
            f"{row['ms_per_step']:.2f} ms per time step"
        )
    detect = detect_run(args.detect_readings, args.detect_stations)
    print(
        f"detect {fmt_int(detect['readings'])} readings in {detect['seconds']:.1f} s "
        f"({fmt_int(detect['readings_per_s'])}/s, parsing and writing included)"
    )
    document.update(tables=tables, streams=streams, detect=detect)
    write_json(args.json, document)


if __name__ == "__main__":
    main()
