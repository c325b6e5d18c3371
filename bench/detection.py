"""Offline evaluation of detection on simulated provinces with ground truth.

Nobody publishes detection probability or false-alarm rates for dose-rate networks (DOMAIN.md):
this module measures them for radmon's detectors and, on the same data, for the rules real
networks use (:mod:`detectors.reference_rules`), next to the Lorden floor that bounds any
detector of a step. Per event class it reports the probability of detection (within the class's
target delay and at all), the median and 90th percentile delay, split by events that start in
rain or outside it, and the false radiological alarms per station-year, overall and in rain.

Matching rules (one place, so that every detector is judged alike):

- An event is detected by the first alarm of the right category (radiological for sources and
  plumes, technical for stuck probes and dropouts, any kind) on one of its stations whose start
  lies in [event start, event end (or run end) + 1 h]; an alarm that started earlier but is still
  open at the event's start counts too, with delay 0.
- Delay in intervals = (alarm start − event start) / interval: 0 means the first affected reading
  raised it.
- A radiological alarm is false when it overlaps no radiological event window [start − 1 h,
  end + 3 h] on its station (technical alarms likewise against fault windows).
- "In rain": true rain > 0.1 mm/h at the station from 3 h before to 1 h after an event's start
  (any of its stations), or within the 3 h before an alarm's start.

Run it as ``python -m bench.detection --seeds 101 102 103 --days 60 --stations 40``; add
``--clock-spread 600`` to put each station on its own clock, as a real network reports.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from bench._common import add_clock_spread, clock_offsets
from detectors import ALARM_COLUMNS, reference_rules
from radmon.models import Station

DETECTORS = ("radmon", "bfs", "japan", "fixed_1.5x")
# Wet season in northern Vietnam, so that rain (washout) matters.
WET_SEASON_START = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 60.0
N_STATIONS = 40
INTERVAL_S = 600
N_SOURCE_NEAR_STATION = 40
N_PASSING_SOURCE = 40
N_REGIONAL_PLUME = 6
TRAINING_DAYS = reference_rules.TRAINING_DAYS


@dataclass(frozen=True)
class ScenarioSpec:
    """What one evaluation run simulates, a seed apart. The planner leaves out events that do
    not fit (see ``Scenario.unplaced``); events start after the first day. The rules' training
    window is the first *training_days* with every known event left out of it. *rain_factor* 0
    gives a run without rain, to tell what rain costs a detector. With *clock_spread_s*, each
    station reports on its own clock, a fixed offset in [0, clock_spread_s) s after the
    simulated times, as probes of a real network do: the detectors see the moved times and
    their alarms are moved back before scoring."""

    days: float = DAYS
    n_stations: int = N_STATIONS
    start: datetime = WET_SEASON_START
    interval_s: int = INTERVAL_S
    n_source_near_station: int = N_SOURCE_NEAR_STATION
    n_passing_source: int = N_PASSING_SOURCE
    n_regional_plume: int = N_REGIONAL_PLUME
    training_days: float = TRAINING_DAYS
    faults: bool = True
    rain_factor: float = 1.0
    clock_spread_s: int = 0


# Matching windows (see the module docstring).
LATE_MATCH = pd.Timedelta(hours=1)
FALSE_BEFORE = pd.Timedelta(hours=1)
FALSE_AFTER = pd.Timedelta(hours=3)
RAIN_THRESHOLD_MM_H = 0.1
EVENT_RAIN_BEFORE = pd.Timedelta(hours=3)
EVENT_RAIN_AFTER = pd.Timedelta(hours=1)
ALARM_RAIN_BEFORE = pd.Timedelta(hours=3)
STATION_YEAR_DAYS = 365.25

RADIOLOGICAL_KINDS = ("source_near_station", "passing_source", "regional_plume")
FAULT_KINDS = ("stuck", "dropout")
# Classes in report order; steps of a source near a station by their relative magnitude.
STEP_CLASSES = {0.1: "source +10%", 0.2: "source +20%", 0.5: "source +50%", 1.0: "source ×2"}
CLASSES = (*STEP_CLASSES.values(), "passing_source", "regional_plume", *FAULT_KINDS)
# Target delay of each class (the aims); None: no target, any delay in the window.
TARGETS: dict[str, pd.Timedelta | None] = {
    "source +10%": pd.Timedelta(hours=6),
    "source +20%": pd.Timedelta(hours=1),
    "source +50%": pd.Timedelta(hours=1),
    "source ×2": pd.Timedelta(hours=1),
    "passing_source": pd.Timedelta(0),
    "regional_plume": pd.Timedelta(hours=3),
    "stuck": None,
    "dropout": None,
}
SPLITS = ("all", "dry", "rain")


class DetectorUnavailable(RuntimeError):
    """A detector that cannot run here (e.g. the engine is not importable yet)."""


# -- scenarios ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One simulated run and its ground truth, as the scorer needs it.

    ``events`` has the simulator's event columns (``station_ids`` joined with ';', ``end`` NaT
    when open); ``rain_mm_h`` is the true rain (step times × station ids), or None when unknown;
    ``run_end`` is the time of the last step; ``train_until`` ends the reference rules' history.
    """

    seed: int
    readings: pd.DataFrame
    events: pd.DataFrame
    stations: pd.DataFrame
    rain_mm_h: pd.DataFrame | None
    interval_s: int
    start: pd.Timestamp
    run_end: pd.Timestamp
    days: float
    train_until: pd.Timestamp
    unplaced: dict[str, int] = field(default_factory=dict)
    clock_offsets: dict[str, int] = field(default_factory=dict)  # s, by station id

    @property
    def n_stations(self) -> int:
        return len(self.stations)

    @property
    def station_years(self) -> float:
        return self.n_stations * self.days / STATION_YEAR_DAYS

    def station_models(self) -> list[Station]:
        """The stations as radmon Stations (what ``radmon detect --stations`` would read)."""
        return stations_of(self.stations)

    def stamped_readings(self) -> pd.DataFrame:
        """The readings as the detectors see them: each station's on its own clock."""
        if not self.clock_offsets:
            return self.readings
        out = self.readings.copy()
        out["time"] += self._offsets(out["station_id"])
        return out

    def unstamped(self, alarms: pd.DataFrame) -> pd.DataFrame:
        """*alarms* (normalised) moved back from the stations' clocks to the simulated times."""
        if not self.clock_offsets:
            return alarms
        out = alarms.copy()
        offsets = self._offsets(out["station_id"])
        out["start"] -= offsets
        out["end"] -= offsets
        return out

    def _offsets(self, station_ids: pd.Series) -> pd.TimedeltaIndex:
        seconds = station_ids.map(self.clock_offsets).fillna(0).to_numpy()
        return pd.to_timedelta(seconds, unit="s")

    def incident_spans(self) -> pd.DataFrame:
        """Every event on every station (``station_id``, ``start``, ``end``): what validation of
        the history would have removed before the reference rules learn from it."""
        spans = explode_events(self.events)
        return spans[["station_id", "start", "end"]]


def stations_of(frame: pd.DataFrame) -> list[Station]:
    """A stations table (the simulator's, as its CSV) as Station models; empty cells unset."""
    rows = frame.to_dict(orient="records")
    return [Station(**{k: v for k, v in row.items() if not _missing(v)}) for row in rows]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def build_scenario(seed: int, spec: ScenarioSpec = ScenarioSpec()) -> Scenario:
    """Simulate one evaluation run of *spec* with *seed*."""
    # the simulator is a test bench for the detectors, not a dependency of the engine
    from ingest.simulator import SimulationConfig, simulate

    config = SimulationConfig(
        n_stations=spec.n_stations,
        seed=seed,
        interval_s=spec.interval_s,
        start=spec.start,
        n_source_near_station=spec.n_source_near_station,
        n_passing_source=spec.n_passing_source,
        n_regional_plume=spec.n_regional_plume,
        faults=spec.faults,
        rain_factor=spec.rain_factor,
    )
    result = simulate(config, spec.days)
    interval_s = spec.interval_s
    n_steps = max(1, round(spec.days * 86400 / interval_s))
    first = pd.Timestamp(config.start)
    requested = {
        "source_near_station": spec.n_source_near_station,
        "passing_source": spec.n_passing_source,
        "regional_plume": spec.n_regional_plume,
    }
    ids = result.stations["station_id"].tolist()
    offsets = clock_offsets(ids, spec.clock_spread_s, seed)
    placed = result.events["kind"].value_counts()
    unplaced = {k: max(0, n - int(placed.get(k, 0))) for k, n in requested.items()}
    return Scenario(
        seed=seed,
        readings=result.readings,
        events=result.events,
        stations=result.stations,
        rain_mm_h=result.rain_mm_h,
        interval_s=interval_s,
        start=first,
        run_end=first + pd.Timedelta(seconds=n_steps * interval_s),
        days=n_steps * interval_s / 86400,
        train_until=first + pd.Timedelta(days=spec.training_days),
        unplaced=unplaced,
        clock_offsets=offsets,
    )


# -- detectors ---------------------------------------------------------------------------------


def run_detector(name: str, scenario: Scenario) -> pd.DataFrame:
    """Alarms of detector *name* over the scenario's readings (ALARM_COLUMNS, UTC times).

    ``radmon`` is the engine of ``radmon detect`` (``detectors.detect_frame``), imported only
    here; if it cannot be imported, :class:`DetectorUnavailable` says why.
    """
    if name == "radmon":
        try:
            from detectors import detect_frame  # type: ignore[attr-defined]
        except ImportError as exc:
            raise DetectorUnavailable(f"detectors.detect_frame cannot be imported: {exc}") from exc
        alarms = detect_frame(scenario.stamped_readings(), scenario.station_models())
    elif name in reference_rules.RULES:
        rule = reference_rules.RULES[name]
        alarms = rule(
            scenario.stamped_readings(),
            scenario.station_models(),
            train_until=scenario.train_until,
            exclude=scenario.incident_spans(),
        )
    else:
        known = ", ".join(DETECTORS)
        raise ValueError(f"unknown detector {name!r}: expected one of {known}")
    return scenario.unstamped(normalize_alarms(alarms))


def normalize_alarms(alarms: pd.DataFrame) -> pd.DataFrame:
    """Alarms with ALARM_COLUMNS, ``start``/``end`` as UTC timestamps and text as str."""
    missing = [c for c in ALARM_COLUMNS if c not in alarms.columns]
    if missing:
        raise ValueError(f"alarms frame lacks column(s) {', '.join(missing)}")
    out = alarms[ALARM_COLUMNS].copy()
    for column in ("start", "end"):
        out[column] = _utc_ns(out[column])
    if out["start"].isna().any():
        raise ValueError("an alarm has no start time")
    for column in ("station_id", "kind", "category", "severity"):
        out[column] = out[column].astype(str)
    return out.reset_index(drop=True)


# -- ground truth helpers ----------------------------------------------------------------------


def event_class(kind: str, magnitude: float | None) -> str:
    """The reporting class of an event: steps split by magnitude, the rest by kind."""
    if kind == "source_near_station":
        steps = np.array(list(STEP_CLASSES))
        nearest = steps[int(np.argmin(np.abs(steps - float(magnitude or 0.0))))]
        return STEP_CLASSES[float(nearest)]
    return kind


def explode_events(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (event, station): ``event_id``, ``kind``, ``station_id``, ``start``, ``end``."""
    ids = events["station_ids"].fillna("").astype(str).str.split(";")
    out = events.assign(station_id=ids).explode("station_id")
    out = out[out["station_id"].astype(bool)]
    out = out[["event_id", "kind", "station_id", "start", "end"]].reset_index(drop=True)
    out["start"] = _utc_ns(out["start"])
    out["end"] = _utc_ns(out["end"])
    return out


def _utc_instant(moment: pd.Timestamp | datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise ValueError(f"time {moment!r} must be aware (UTC)")
    return stamp.tz_convert("UTC").as_unit("ns")


def _utc_ns(column: pd.Series) -> pd.Series:
    """Times as UTC at one resolution, so that frames from any source merge and compare."""
    return pd.to_datetime(column, utc=True).dt.as_unit("ns")


def rain_near(
    rain: pd.DataFrame | None,
    station_ids: Sequence[str] | np.ndarray,
    times: pd.Series | pd.DatetimeIndex,
    before: pd.Timedelta,
    after: pd.Timedelta,
    threshold: float = RAIN_THRESHOLD_MM_H,
) -> np.ndarray:
    """For each (station, time): did true rain exceed *threshold* at the station at any step
    in [time − before, time + after]? Counted with a cumulative sum, so it is O(log n) a query.
    Without rain truth every answer is NaN; unknown stations get False."""
    times = pd.DatetimeIndex(pd.to_datetime(times, utc=True)).as_unit("ns")
    n = len(times)
    if rain is None:
        return np.full(n, np.nan)
    if n == 0:
        return np.zeros(0, dtype=bool)
    grid = pd.DatetimeIndex(pd.to_datetime(rain.index, utc=True)).as_unit("ns").asi8
    wet = (rain.to_numpy(dtype=float) > threshold).astype(np.int64)
    cumulative = np.vstack([np.zeros((1, wet.shape[1]), dtype=np.int64), wet.cumsum(axis=0)])
    lo = np.searchsorted(grid, (times - before).asi8, side="left")
    hi = np.searchsorted(grid, (times + after).asi8, side="right")
    column = rain.columns.get_indexer(pd.Index(station_ids))
    known = column >= 0
    safe = np.where(known, column, 0)
    count = cumulative[hi, safe] - cumulative[lo, safe]
    return (count > 0) & known


# -- matching and scoring ----------------------------------------------------------------------


def match_events(
    events: pd.DataFrame,
    alarms: pd.DataFrame,
    *,
    interval_s: int,
    run_end: pd.Timestamp,
    rain: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per event: its class, whether it started in rain, whether and how fast it was
    detected (see the module docstring for the rules).

    Columns: ``event_id``, ``kind``, ``event_class``, ``start``, ``in_rain`` (NaN if unknown),
    ``detected``, ``delay_intervals``, ``delay_min``, ``within_target``.
    """
    columns = _MATCH_COLUMNS
    if events.empty:
        return pd.DataFrame(columns=columns)
    alarms = normalize_alarms(alarms)
    run_end = _utc_instant(run_end)
    pairs = explode_events(events)
    pairs["last"] = pairs["end"].fillna(run_end) + LATE_MATCH
    pairs["category"] = np.where(
        pairs["kind"].isin(RADIOLOGICAL_KINDS), "radiological", "technical"
    )
    first_parts, open_parts = [], []
    for category, group in pairs.groupby("category"):
        chosen = alarms[alarms["category"] == category]
        if not chosen.empty:
            first, open_at_start = _first_alarms(group, chosen)
            first_parts.append(first)
            open_parts.append(open_at_start)
    no_time = pd.Series(pd.NaT, index=pairs.index, dtype="datetime64[ns, UTC]")
    pairs["first_alarm"] = pd.concat([no_time[:0], *first_parts]).reindex(pairs.index)
    opened = pd.concat([pd.Series(dtype=bool), *open_parts]).reindex(pairs.index)
    pairs["open_at_start"] = opened.fillna(False).astype(bool)

    pairs["delay"] = (pairs["first_alarm"] - pairs["start"]).where(
        pairs["first_alarm"] <= pairs["last"]
    )
    pairs.loc[pairs["open_at_start"], "delay"] = pd.Timedelta(0)
    pairs["wet"] = rain_near(
        rain, pairs["station_id"].to_numpy(), pairs["start"], EVENT_RAIN_BEFORE, EVENT_RAIN_AFTER
    )
    per_event = pairs.groupby("event_id", sort=False).agg(
        delay=("delay", "min"), wet=("wet", "max")
    )
    out = events[["event_id", "kind", "magnitude", "start"]].copy()
    out["start"] = _utc_ns(out["start"])
    out["event_class"] = [
        event_class(k, m) for k, m in zip(out["kind"], out["magnitude"], strict=True)
    ]
    delay = out["event_id"].map(per_event["delay"])
    wet = out["event_id"].map(per_event["wet"]).astype(float)
    out["in_rain"] = wet.where(wet.notna())
    out["detected"] = delay.notna()
    seconds = delay.dt.total_seconds()
    out["delay_intervals"] = seconds / interval_s
    out["delay_min"] = seconds / 60.0
    limit = out["event_class"].map(_target_seconds).astype(float)
    out["within_target"] = out["detected"] & (seconds <= limit)
    return out[columns].reset_index(drop=True)


def _target_seconds(event_cls: str) -> float:
    target = TARGETS.get(event_cls)
    return math.inf if target is None else target.total_seconds()


_MATCH_COLUMNS = [
    "event_id",
    "kind",
    "event_class",
    "start",
    "in_rain",
    "detected",
    "delay_intervals",
    "delay_min",
    "within_target",
]


def _first_alarms(pairs: pd.DataFrame, alarms: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """For each (event, station) pair (index of *pairs*): the start of the first alarm on that
    station starting at or after the event's start, and whether an earlier alarm is still open
    at the event's start.

    Two as-of merges on (station, time): O((events + alarms) log) rather than events × alarms.
    """
    right = alarms[["station_id", "start", "end"]].sort_values("start", kind="stable")
    right = right.rename(columns={"start": "alarm_start"})
    # the latest end of any alarm of the station that started so far (open = forever)
    right["reach"] = right["end"].fillna(reference_rules.FAR_FUTURE)
    right["reach"] = right.groupby("station_id")["reach"].cummax()
    left = pairs[["station_id", "start"]].rename_axis("pair").reset_index()
    left = left.sort_values("start", kind="stable")
    forward = pd.merge_asof(
        left,
        right[["station_id", "alarm_start"]],
        left_on="start",
        right_on="alarm_start",
        by="station_id",
        direction="forward",
    ).set_index("pair")
    backward = pd.merge_asof(
        left,
        right[["station_id", "alarm_start", "reach"]],
        left_on="start",
        right_on="alarm_start",
        by="station_id",
        direction="backward",
        allow_exact_matches=False,
    ).set_index("pair")
    open_at_start = (backward["reach"] >= backward["start"]).fillna(False).astype(bool)
    return forward["alarm_start"], open_at_start


def flag_false_alarms(
    events: pd.DataFrame,
    alarms: pd.DataFrame,
    *,
    run_end: pd.Timestamp,
    rain: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The alarms with ``false`` (overlapping no event of their category on their station within
    [event start − 1 h, event end + 3 h]) and ``in_rain`` (true rain > 0.1 mm/h at the station
    within the 3 h before the alarm's start; NaN if unknown)."""
    alarms = normalize_alarms(alarms)
    run_end = _utc_instant(run_end)
    out = alarms.copy()
    out["false"] = True
    if not alarms.empty and not events.empty:
        pairs = explode_events(events)
        pairs["category"] = np.where(
            pairs["kind"].isin(RADIOLOGICAL_KINDS), "radiological", "technical"
        )
        pairs["window_start"] = pairs["start"] - FALSE_BEFORE
        pairs["window_end"] = pairs["end"].fillna(run_end) + FALSE_AFTER
        spans = out[["station_id", "category", "start", "end"]].copy()
        spans["alarm"] = np.arange(len(spans))
        spans["end"] = spans["end"].fillna(run_end)
        hits = spans.merge(
            pairs[["station_id", "category", "window_start", "window_end"]],
            on=["station_id", "category"],
        )
        overlap = (hits["start"] <= hits["window_end"]) & (hits["end"] >= hits["window_start"])
        true_alarms = hits.loc[overlap, "alarm"].unique()
        out.loc[true_alarms, "false"] = False
    wet = rain_near(
        rain, out["station_id"].to_numpy(), out["start"], ALARM_RAIN_BEFORE, pd.Timedelta(0)
    )
    out["in_rain"] = pd.Series(wet, index=out.index, dtype=float)
    return out


def summarize_matches(matches: pd.DataFrame) -> pd.DataFrame:
    """Per class and split (all / dry / rain): n, detections, PoD, delays (median, p90)."""
    rows = []
    for event_cls in CLASSES:
        of_class = matches[matches["event_class"] == event_cls]
        if of_class.empty:
            continue
        for split in SPLITS:
            if split == "all":
                chosen = of_class
            else:
                flag = of_class["in_rain"]
                chosen = of_class[flag == (1.0 if split == "rain" else 0.0)]
            rows.append({"event_class": event_cls, "split": split, **_score(chosen)})
    return pd.DataFrame(rows, columns=["event_class", "split", *_SCORE_COLUMNS])


_SCORE_COLUMNS = [
    "n",
    "detected",
    "detected_target",
    "pod",
    "pod_target",
    "median_delay",
    "p90_delay",
    "median_delay_min",
    "p90_delay_min",
]


def _score(chosen: pd.DataFrame) -> dict[str, float]:
    n = len(chosen)
    detected = chosen[chosen["detected"].astype(bool)]
    delays = detected["delay_intervals"].to_numpy(dtype=float)
    minutes = detected["delay_min"].to_numpy(dtype=float)
    hits_target = int(chosen["within_target"].astype(bool).sum())
    return {
        "n": n,
        "detected": len(detected),
        "detected_target": hits_target,
        "pod": len(detected) / n if n else np.nan,
        "pod_target": hits_target / n if n else np.nan,
        "median_delay": float(np.median(delays)) if len(delays) else np.nan,
        "p90_delay": float(np.percentile(delays, 90)) if len(delays) else np.nan,
        "median_delay_min": float(np.median(minutes)) if len(minutes) else np.nan,
        "p90_delay_min": float(np.percentile(minutes, 90)) if len(minutes) else np.nan,
    }


def summarize_false_alarms(flags: pd.DataFrame, station_years: float) -> dict[str, float]:
    """Counts and rates per station-year of false radiological (overall and in rain) and false
    technical alarms, from :func:`flag_false_alarms`."""
    radiological = flags[flags["category"] == "radiological"]
    technical = flags[flags["category"] == "technical"]
    false_rad = radiological[radiological["false"]]
    in_rain = int((false_rad["in_rain"] == 1.0).sum())
    rain_known = bool(false_rad["in_rain"].notna().all())
    false_tech = int(technical["false"].sum())
    return {
        "station_years": station_years,
        "radiological_alarms": len(radiological),
        "false_radiological": len(false_rad),
        "false_per_station_year": len(false_rad) / station_years,
        "false_in_rain": in_rain if rain_known else np.nan,
        "false_in_rain_per_station_year": in_rain / station_years if rain_known else np.nan,
        "technical_alarms": len(technical),
        "false_technical": false_tech,
        "false_technical_per_station_year": false_tech / station_years,
    }


def chance_of_false_alarm(per_station_year: float, hours: float) -> float:
    """Probability that a station raises at least one false alarm within *hours* (Poisson at
    the measured rate): how much of a PoD within a window could be luck. Rain clusters false
    alarms, so this is a rough guide, not a correction."""
    return 1.0 - math.exp(-per_station_year * hours / (STATION_YEAR_DAYS * 24))


# -- the Lorden floor --------------------------------------------------------------------------


def intervals_per_station_year(interval_s: float) -> float:
    """ARL₀ for one false alarm per station-year, in readings."""
    return STATION_YEAR_DAYS * 86400 / interval_s


def lorden_floor_intervals(
    lambda0: np.ndarray | float, delta: np.ndarray | float, arl0: float
) -> np.ndarray:
    """Lorden (1971) worst-case mean delay ≈ ln(ARL₀) / D(f₁‖f₀), in readings, for a relative
    step *delta* of Poisson counts with *lambda0* background counts per reading:
    D = λ₁ ln(λ₁/λ₀) − (λ₁ − λ₀), λ₁ = λ₀(1 + δ). No detector with that false-alarm rate beats it
    (DOMAIN.md, "Statistics that bound any detector")."""
    lambda0 = np.asarray(lambda0, dtype=float)
    lambda1 = lambda0 * (1.0 + np.asarray(delta, dtype=float))
    divergence = lambda1 * np.log(lambda1 / lambda0) - (lambda1 - lambda0)
    return np.log(arl0) / divergence


def step_floors(scenario: Scenario) -> pd.DataFrame:
    """The Lorden floor of every source-near-station step: ``event_id``, ``event_class``,
    ``lambda0`` (background counts per reading, from the station's training mean and its
    probe's sensitivity) and ``floor_intervals``."""
    steps = scenario.events[scenario.events["kind"] == "source_near_station"]
    columns = ["event_id", "event_class", "lambda0", "floor_intervals"]
    if steps.empty:
        return pd.DataFrame(columns=columns)
    frame = reference_rules.prepare_readings(scenario.readings)
    mask = reference_rules.training_mask(frame, scenario.train_until, scenario.incident_spans())
    mean = reference_rules.station_means(frame, mask)
    sensitivity = scenario.stations.set_index("station_id")["sensitivity_cps_per_usv_h"]
    station = steps["station_ids"].astype(str)
    lambda0 = (
        station.map(mean).to_numpy(dtype=float)
        * 1e-3
        * station.map(sensitivity).to_numpy(dtype=float)
        * scenario.interval_s
    )
    delta = steps["magnitude"].to_numpy(dtype=float)
    floor = lorden_floor_intervals(lambda0, delta, intervals_per_station_year(scenario.interval_s))
    return pd.DataFrame(
        {
            "event_id": steps["event_id"].to_numpy(),
            "event_class": [event_class("source_near_station", d) for d in delta],
            "lambda0": lambda0,
            "floor_intervals": floor,
        }
    )


def summarize_floors(floors: pd.DataFrame) -> pd.DataFrame:
    """Median and p90 Lorden floor (readings) per step class."""
    rows = []
    for event_cls in STEP_CLASSES.values():
        values = floors.loc[floors["event_class"] == event_cls, "floor_intervals"].to_numpy(
            dtype=float
        )
        if len(values):
            rows.append(
                {
                    "event_class": event_cls,
                    "n": len(values),
                    "median_floor": float(np.median(values)),
                    "p90_floor": float(np.percentile(values, 90)),
                }
            )
    return pd.DataFrame(rows, columns=["event_class", "n", "median_floor", "p90_floor"])


# -- the whole evaluation ----------------------------------------------------------------------


@dataclass
class EvaluationReport:
    """Everything measured: per-event matches, per-alarm flags and their summaries.

    ``detection``: detector, scope ("seed N" or "pooled"), event_class, split and the scores of
    :func:`summarize_matches`; ``false_alarms``: detector, scope and
    :func:`summarize_false_alarms`; ``floors``: scope and :func:`summarize_floors`;
    ``scenarios``: per seed the events placed by kind, those left out, and the rain share;
    ``matches`` (one row per event) and ``alarms`` (one row per alarm, with ``false`` and
    ``in_rain``) carry ``detector`` and ``seed``, for looking into any figure.
    """

    seeds: list[int]
    spec: ScenarioSpec
    detectors: list[str]
    skipped: dict[str, str]
    runtime_s: dict[str, float]
    scenarios: pd.DataFrame
    matches: pd.DataFrame
    alarms: pd.DataFrame
    detection: pd.DataFrame
    false_alarms: pd.DataFrame
    floors: pd.DataFrame


def evaluate(
    seeds: Sequence[int],
    spec: ScenarioSpec = ScenarioSpec(),
    *,
    detectors: Sequence[str] = DETECTORS,
    progress: Callable[[str], None] | None = None,
) -> EvaluationReport:
    """Simulate one scenario per seed, run every detector over it and score them alike."""
    if not seeds:
        raise ValueError("evaluate needs at least one seed")
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown:
        raise ValueError(f"unknown detector(s) {', '.join(unknown)}: expected {DETECTORS}")
    say = progress or (lambda _message: None)
    skipped: dict[str, str] = {}
    runtime: dict[str, float] = {}
    all_matches, all_flags, all_floors, scenario_rows = [], [], [], []
    years: dict[int, float] = {}
    for seed in seeds:
        began = time.perf_counter()
        scenario = build_scenario(seed, spec)
        runtime["simulate"] = runtime.get("simulate", 0.0) + time.perf_counter() - began
        years[seed] = scenario.station_years
        scenario_rows.append(_scenario_row(scenario))
        floors = step_floors(scenario)
        floors["seed"] = seed
        all_floors.append(floors)
        for name in detectors:
            if name in skipped:
                continue
            began = time.perf_counter()
            try:
                alarms = run_detector(name, scenario)
            except DetectorUnavailable as exc:
                skipped[name] = str(exc)
                say(f"skipping {name}: {exc}")
                continue
            runtime[name] = runtime.get(name, 0.0) + time.perf_counter() - began
            say(f"seed {seed}: {name}: {len(alarms)} alarms")
            matches = match_events(
                scenario.events,
                alarms,
                interval_s=spec.interval_s,
                run_end=scenario.run_end,
                rain=scenario.rain_mm_h,
            )
            all_matches.append(matches.assign(detector=name, seed=seed))
            flags = flag_false_alarms(
                scenario.events, alarms, run_end=scenario.run_end, rain=scenario.rain_mm_h
            )
            all_flags.append(flags.assign(detector=name, seed=seed))
    ran = [d for d in detectors if d not in skipped]
    matches = pd.concat(all_matches, ignore_index=True) if all_matches else _no_matches()
    flags = (
        pd.concat(all_flags, ignore_index=True)
        if all_flags
        else pd.DataFrame(columns=[*ALARM_COLUMNS, "false", "in_rain", "detector", "seed"])
    )
    floors = pd.concat(all_floors, ignore_index=True)
    detection, false_alarms, floor_rows = [], [], []
    scopes: list[tuple[str, list[int]]] = [(f"seed {s}", [s]) for s in seeds]
    scopes.append(("pooled", list(seeds)))
    for scope, chosen in scopes:
        floor_rows.append(summarize_floors(floors[floors["seed"].isin(chosen)]).assign(scope=scope))
        for name in ran:
            of = matches[(matches["detector"] == name) & matches["seed"].isin(chosen)]
            detection.append(summarize_matches(of).assign(detector=name, scope=scope))
            flagged = flags[(flags["detector"] == name) & flags["seed"].isin(chosen)]
            summary = summarize_false_alarms(flagged, sum(years[s] for s in chosen))
            false_alarms.append({"detector": name, "scope": scope, **summary})
    return EvaluationReport(
        seeds=list(seeds),
        spec=spec,
        detectors=ran,
        skipped=skipped,
        runtime_s=runtime,
        scenarios=pd.DataFrame(scenario_rows),
        matches=matches,
        alarms=flags,
        detection=_front(pd.concat(detection, ignore_index=True), ["detector", "scope"])
        if detection
        else pd.DataFrame(),
        false_alarms=pd.DataFrame(false_alarms),
        floors=_front(pd.concat(floor_rows, ignore_index=True), ["scope"]),
    )


def _front(frame: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    return frame[first + [c for c in frame.columns if c not in first]]


def _no_matches() -> pd.DataFrame:
    return pd.DataFrame(columns=[*_MATCH_COLUMNS, "detector", "seed"])


def _scenario_row(scenario: Scenario) -> dict[str, object]:
    counts = scenario.events["kind"].value_counts()
    row: dict[str, object] = {"seed": scenario.seed}
    for kind in (*RADIOLOGICAL_KINDS, *FAULT_KINDS):
        row[kind] = int(counts.get(kind, 0))
    row["left_out"] = sum(scenario.unplaced.values())
    if scenario.rain_mm_h is not None:
        row["rain_share"] = float((scenario.rain_mm_h.to_numpy() > RAIN_THRESHOLD_MM_H).mean())
    else:
        row["rain_share"] = np.nan
    return row


# -- the tables --------------------------------------------------------------------------------


def _cell(value: object, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(hits: object, n: object) -> str:
    if not n:
        return "—"
    return f"{100.0 * float(hits) / float(n):.0f}% ({int(hits)}/{int(n)})"  # type: ignore[arg-type]


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _target_text(event_cls: str) -> str:
    target = TARGETS.get(event_cls)
    if target is None:
        return "any"
    if target == pd.Timedelta(0):
        return "first reading"
    return f"≤ {target.total_seconds() / 3600:g} h"


def _detection_table(report: EvaluationReport, scope: str) -> str:
    det = report.detection
    det = det[det["scope"] == scope]
    floors = report.floors[report.floors["scope"] == scope].set_index("event_class")
    header = [
        "class",
        "detector",
        "target",
        "PoD@target",
        "PoD",
        "median delay (int / min)",
        "p90 delay (int / min)",
        "dry: PoD@target",
        "dry: median",
        "rain: PoD@target",
        "rain: median",
    ]
    rows: list[list[str]] = []
    for event_cls in CLASSES:
        of_class = det[det["event_class"] == event_cls]
        if of_class.empty:
            continue
        for name in report.detectors:
            mine = of_class[of_class["detector"] == name].set_index("split")
            if "all" not in mine.index:
                continue
            a = mine.loc["all"]
            row = [
                event_cls,
                name,
                _target_text(event_cls),
                _pct(a["detected_target"], a["n"]) if TARGETS[event_cls] is not None else "—",
                _pct(a["detected"], a["n"]),
                f"{_cell(a['median_delay'])} / {_cell(a['median_delay_min'], 0)}",
                f"{_cell(a['p90_delay'])} / {_cell(a['p90_delay_min'], 0)}",
            ]
            for split in ("dry", "rain"):
                if split in mine.index:
                    s = mine.loc[split]
                    hits = s["detected_target"] if TARGETS[event_cls] is not None else s["detected"]
                    row += [_pct(hits, s["n"]), _cell(s["median_delay"])]
                else:
                    row += ["—", "—"]
            rows.append(row)
        if event_cls in floors.index:
            f = floors.loc[event_cls]
            interval_min = report.spec.interval_s / 60
            rows.append(
                [
                    event_cls,
                    "*Lorden floor*",
                    "",
                    "",
                    "",
                    f"{_cell(f['median_floor'], 2)} / {_cell(f['median_floor'] * interval_min, 0)}",
                    f"{_cell(f['p90_floor'], 2)} / {_cell(f['p90_floor'] * interval_min, 0)}",
                    "",
                    "",
                    "",
                    "",
                ]
            )
    return _table(header, rows)


def _scopes(report: EvaluationReport) -> list[str]:
    if len(report.seeds) == 1:
        return ["pooled"]
    return ["pooled", *(f"seed {s}" for s in report.seeds)]


def _false_alarm_table(report: EvaluationReport, scopes: list[str]) -> str:
    header = [
        "detector",
        "scope",
        "station-years",
        "radiological alarms",
        "false",
        "false / station-year",
        "false in rain",
        "in rain / station-year",
        "false technical / station-year",
        "chance of a false one in 1 h / 6 h",
    ]
    rows = []
    fa = report.false_alarms
    for name in report.detectors:
        for scope in scopes:
            chosen = fa[(fa["detector"] == name) & (fa["scope"] == scope)]
            if chosen.empty:
                continue
            r = chosen.iloc[0]
            rows.append(
                [
                    name,
                    scope,
                    _cell(r["station_years"], 2),
                    str(int(r["radiological_alarms"])),
                    str(int(r["false_radiological"])),
                    _cell(r["false_per_station_year"]),
                    _cell(r["false_in_rain"], 0),
                    _cell(r["false_in_rain_per_station_year"]),
                    _cell(r["false_technical_per_station_year"]),
                    " / ".join(
                        f"{100 * chance_of_false_alarm(r['false_per_station_year'], h):.0f}%"
                        for h in (1.0, 6.0)
                    ),
                ]
            )
    return _table(header, rows)


def format_report(report: EvaluationReport) -> str:
    """The evaluation as Markdown tables: scenarios, detection and false alarms, pooled over
    seeds and per seed."""
    spec = report.spec
    parts = [
        "# Detection evaluation",
        "",
        f"Seeds {', '.join(map(str, report.seeds))}: {spec.n_stations} stations × "
        f"{spec.days:g} days each from {spec.start:%Y-%m-%d}, "
        f"{spec.interval_s // 60}-min readings, rain × {spec.rain_factor:g}"
        + (
            f", each station on its own clock (0–{spec.clock_spread_s} s after the simulated "
            "times; alarms moved back before scoring). "
            if spec.clock_spread_s
            else ". "
        )
        + f"Reference rules learn from the first {spec.training_days:g} days (known events "
        "left out). Delays are in intervals (0 = the first affected reading raised the alarm) "
        "and minutes. The Lorden floor counts readings from the first affected one (a "
        "detector with delay d has used d + 1 readings) at one false alarm per station-year.",
        "",
    ]
    for name, why in report.skipped.items():
        parts += [f"**{name} skipped**: {why}", ""]
    scen = report.scenarios
    header = ["seed", *RADIOLOGICAL_KINDS, *FAULT_KINDS, "left out", "rain > 0.1 mm/h"]
    rows = [
        [
            str(r["seed"]),
            *(str(r[k]) for k in (*RADIOLOGICAL_KINDS, *FAULT_KINDS)),
            str(r["left_out"]),
            f"{100 * r['rain_share']:.1f}% of station-time"
            if not math.isnan(r["rain_share"])
            else "—",
        ]
        for r in scen.to_dict(orient="records")
    ]
    parts += ["## Events placed", "", _table(header, rows), ""]
    if report.detection.empty:
        parts += ["No detector ran.", ""]
        return "\n".join(parts)
    parts += [
        "## Detection, pooled over seeds",
        "",
        _detection_table(report, "pooled"),
        "",
        "## False alarms",
        "",
        _false_alarm_table(report, _scopes(report)),
        "",
    ]
    if len(report.seeds) > 1:
        for seed in report.seeds:
            parts += [f"## Detection, seed {seed}", "", _detection_table(report, f"seed {seed}")]
            parts.append("")
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in report.runtime_s.items())
    parts += [f"Run time: {timings}.", ""]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.detection``: run the evaluation and print the tables."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.detection", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103])
    parser.add_argument("--days", type=float, default=DAYS)
    parser.add_argument("--stations", type=int, default=N_STATIONS)
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=list(DETECTORS))
    parser.add_argument("--sources", type=int, default=N_SOURCE_NEAR_STATION)
    parser.add_argument("--passing", type=int, default=N_PASSING_SOURCE)
    parser.add_argument("--plumes", type=int, default=N_REGIONAL_PLUME)
    parser.add_argument("--training-days", type=float, default=TRAINING_DAYS)
    parser.add_argument("--rain-factor", type=float, default=1.0)
    add_clock_spread(parser)
    args = parser.parse_args(argv)
    spec = ScenarioSpec(
        days=args.days,
        n_stations=args.stations,
        n_source_near_station=args.sources,
        n_passing_source=args.passing,
        n_regional_plume=args.plumes,
        training_days=args.training_days,
        rain_factor=args.rain_factor,
        clock_spread_s=args.clock_spread,
    )
    report = evaluate(
        args.seeds,
        spec,
        detectors=args.detectors,
        progress=lambda message: print(message, file=sys.stderr),
    )
    print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
