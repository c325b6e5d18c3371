"""A whole run as tables (readings, events, stations) and their CSV files (CONTRACTS.md)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ingest.simulator.config import SimulationConfig
from ingest.simulator.engine import ProvinceSimulator
from ingest.simulator.events import InjectedEvent
from radmon import stations_io
from radmon.errors import InputError

READING_COLUMNS = ["time", "station_id", "dose_rate_nsv_h", "precip_mm_h"]
STATION_COLUMNS = list(stations_io.COLUMNS)
EVENT_COLUMNS = [
    "event_id",
    "kind",
    "start",
    "end",
    "station_ids",
    "magnitude",
    "added_nsv_h",
    "lat",
    "lon",
    "detail",
]
_ISO_Z = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class SimulationResult:
    """A simulated run: readings (sorted by time, station_id), ground-truth events, stations.

    ``rain_mm_h`` is the true rain rate that fell on every station at every step (index: the
    step times, UTC; columns: station ids), whether or not a gauge saw it: the truth an
    evaluation needs to tell alarms and events "in rain" from dry ones.
    """

    readings: pd.DataFrame
    events: pd.DataFrame
    stations: pd.DataFrame
    config: SimulationConfig
    rain_mm_h: pd.DataFrame | None = None


def simulate(config: SimulationConfig, days: float) -> SimulationResult:
    """Run the province for *days* and return it as tables; event counts are for the whole run."""
    if not (days > 0 and math.isfinite(days)):
        raise InputError(f"days={days}: must be a positive number")
    sim = ProvinceSimulator(config, horizon_days=days)
    n_steps = max(1, round(days * 86400 / config.interval_s))  # as the planner's window
    n = len(sim.stations)
    step_of = np.empty(n_steps * n, dtype=np.int64)
    station = np.empty(n_steps * n, dtype=np.int64)
    dose = np.empty(n_steps * n)
    precip = np.empty(n_steps * n)
    rain = np.empty((n_steps, n))
    filled = 0
    for k in range(1, n_steps + 1):
        result = sim.step()
        m = len(result.station_index)
        step_of[filled : filled + m] = k
        station[filled : filled + m] = result.station_index
        dose[filled : filled + m] = result.dose_rate_nsv_h
        precip[filled : filled + m] = result.precip_mm_h
        rain[k - 1] = result.rain_mm_h
        filled += m
    start = pd.Timestamp(config.start)
    times = start + pd.to_timedelta(step_of[:filled] * config.interval_s, unit="s")
    readings = pd.DataFrame(
        {
            "time": times,
            "station_id": sim.network.ids[station[:filled]],
            "dose_rate_nsv_h": dose[:filled],
            "precip_mm_h": precip[:filled],
        }
    )
    end = config.start + pd.Timedelta(seconds=n_steps * config.interval_s)
    events = [e for e in sim.events if e.start <= end]
    step_times = start + pd.to_timedelta(np.arange(1, n_steps + 1) * config.interval_s, unit="s")
    rain_frame = pd.DataFrame(
        rain,
        index=pd.DatetimeIndex(step_times, name="time"),
        columns=pd.Index(sim.network.ids.tolist(), name="station_id"),
    )
    return SimulationResult(
        readings=readings,
        events=events_frame(events),
        stations=stations_frame(sim),
        config=config,
        rain_mm_h=rain_frame,
    )


def stations_frame(sim: ProvinceSimulator) -> pd.DataFrame:
    """The stations as the CONTRACTS stations CSV, plus interval, sensitivity and gauge."""
    return pd.DataFrame([s.model_dump() for s in sim.stations], columns=STATION_COLUMNS)


def events_frame(events: list[InjectedEvent]) -> pd.DataFrame:
    """Ground truth as a table; ``station_ids`` joined with ';' and an empty ``end`` if open."""
    rows = [
        {
            **e.__dict__,
            "kind": str(e.kind),
            "station_ids": ";".join(e.station_ids),
        }
        for e in events
    ]
    frame = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    for column in ("start", "end"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _iso(column: pd.Series) -> np.ndarray:
    """UTC times as ISO 8601 with 'Z', formatting each distinct time once (fast for big files)."""
    codes, uniques = pd.factorize(column)  # a missing time (NaT) gets code -1
    text = pd.DatetimeIndex(uniques).tz_convert("UTC").strftime(_ISO_Z).to_numpy(dtype=object)
    out = np.full(len(codes), "", dtype=object)
    valid = codes >= 0
    out[valid] = text[codes[valid]]
    return out


def write_csvs(
    result: SimulationResult,
    readings_path: str | os.PathLike[str],
    events_path: str | os.PathLike[str] | None = None,
    stations_path: str | os.PathLike[str] | None = None,
) -> None:
    """Write the readings CSV (CONTRACTS: time,station_id,dose_rate_nsv_h,precip_mm_h) and,
    if asked, the events and stations CSVs. Empty cells mean unknown (no gauge, open end).
    """
    readings = result.readings
    if not (readings["time"].is_monotonic_increasing and _ids_sorted_within_time(readings)):
        readings = readings.sort_values(["time", "station_id"], kind="stable")
    out = pd.DataFrame(
        {
            "time": _iso(readings["time"]),
            "station_id": readings["station_id"].to_numpy(),
            "dose_rate_nsv_h": readings["dose_rate_nsv_h"].to_numpy(),
            "precip_mm_h": readings["precip_mm_h"].to_numpy(),
        }
    )
    out.to_csv(readings_path, index=False, float_format="%.2f", na_rep="")
    if events_path is not None:
        events = result.events.copy()
        for column in ("start", "end"):
            events[column] = _iso(events[column])
        events.to_csv(events_path, index=False, na_rep="")
    if stations_path is not None:
        result.stations.to_csv(stations_path, index=False, na_rep="")


def _ids_sorted_within_time(readings: pd.DataFrame) -> bool:
    """Whether station ids increase within each time (true for what :func:`simulate` builds)."""
    times = readings["time"].to_numpy()
    ids = readings["station_id"].to_numpy()
    if len(ids) < 2:
        return True
    same_time = times[1:] == times[:-1]
    return bool((ids[1:][same_time] > ids[:-1][same_time]).all())
