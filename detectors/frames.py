"""The engine over a whole table of readings (``radmon detect``, the evaluation, benchmarks).

Readings are cut into the engine's steps (:func:`detectors.engine.steps`) and fed to the same
:meth:`Engine.step` that serves live data, so a file gives exactly the alarms the live engine
would have raised.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from detectors.engine import Engine, steps
from radmon.config import DetectionSettings
from radmon.models import Alarm, Station

ALARM_COLUMNS = [
    "station_id",
    "start",
    "end",
    "kind",
    "category",
    "severity",
    "peak_nsv_h",
    "baseline_nsv_h",
]


def run_frame(engine: Engine, readings: pd.DataFrame) -> list[Alarm]:
    """Feed *readings* (time, station_id, dose_rate_nsv_h[, precip_mm_h]) through *engine*;
    returns every alarm change in order."""
    if readings.empty:
        return []
    times = pd.DatetimeIndex(readings["time"])
    if times.tz is None:
        raise ValueError("reading times must be timezone-aware (UTC)")
    seconds = times.as_unit("s").asi8
    # hashed, not sorted: a million readings' ids sort in a third of a second
    inverse, ids = pd.factorize(readings["station_id"].astype(str), sort=True)
    codes = engine.rows(ids.tolist())[inverse]
    dose = readings["dose_rate_nsv_h"].to_numpy(dtype=np.float64)
    if "precip_mm_h" in readings:
        precip = pd.to_numeric(readings["precip_mm_h"], errors="coerce").to_numpy(np.float64)
    else:
        precip = np.full(len(dose), np.nan)
    changes: list[Alarm] = []
    for rows in steps(seconds, codes, dose):  # a station's second given twice: its highest
        engine.step(seconds[rows], codes[rows], dose[rows], precip[rows])
        if engine.episodes.changes:
            changes.extend(engine.drain())
    return changes


def episodes_frame(changes: Sequence[Alarm]) -> pd.DataFrame:
    """One row per episode (its last state) in the CONTRACTS alarms CSV columns."""
    last: dict[tuple[str, str, object], Alarm] = {}
    for alarm in changes:
        last[(alarm.station_id, alarm.kind, alarm.opened_at)] = alarm
    rows = [
        {
            "station_id": a.station_id,
            "start": a.opened_at,
            "end": a.details.get("last_abnormal_at") if a.cleared_at is not None else None,
            "kind": a.kind,
            "category": str(a.category),
            "severity": str(a.severity),
            "peak_nsv_h": a.peak_nsv_h,
            "baseline_nsv_h": a.baseline_nsv_h,
        }
        for a in last.values()
    ]
    frame = pd.DataFrame(rows, columns=ALARM_COLUMNS)
    frame["start"] = pd.to_datetime(frame["start"], utc=True)
    frame["end"] = pd.to_datetime(frame["end"], utc=True)
    return frame.sort_values(["start", "station_id", "kind"], kind="stable").reset_index(drop=True)


def detect_frame(
    readings: pd.DataFrame,
    stations: Sequence[Station] = (),
    settings: DetectionSettings | None = None,
    *,
    site_timezone: str = "Asia/Ho_Chi_Minh",
    now: float | None = None,
) -> pd.DataFrame:
    """Alarm episodes of *readings* (any order) as the CONTRACTS alarms table.

    *now* is the wall clock that readings from the future are judged against (default: the
    real one; fix it for a reproducible run).
    """
    clock = (lambda: now) if now is not None else time.time
    engine = Engine(settings, stations, site_timezone=site_timezone, clock=clock)
    changes = run_frame(engine, readings)
    if not readings.empty:  # the file's last word: episodes still open get their true peak
        end = pd.DatetimeIndex(readings["time"]).max()
        engine.episodes.emit_grown_peaks(int(end.timestamp()))
    return episodes_frame(changes + engine.drain())
