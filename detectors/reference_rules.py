"""The rules real networks use to flag a gamma dose-rate reading, as peers for radmon's detectors.

Nobody publishes detection probability or false-alarm rates for these rules (DOMAIN.md, "How real
networks decide that something is wrong"), so the evaluation runs them on the same simulated data
as radmon. Each rule learns a per-station background from a training window, then turns every
reading above its threshold into alarm episodes with the columns of ``detectors.ALARM_COLUMNS``
(CONTRACTS.md, "Detection files"): category ``radiological``, severity ``warning``.

- ``bfs``: reading > mean + 20 nSv/h (BfS ODL: per-probe threshold ≈ mean + 0.02 µSv/h; BfS
  ODL-INFO).
- ``japan``: reading above the "normal range" mean ± 3σ, with separate ranges for rain and no rain
  (Japanese prefectures, JAEA / Ehime prefecture). Rain means the station's gauge shows > 0 now or
  within the last hour; stations without a gauge use the dry range, learnt from all their readings.
- ``fixed_1.5x``: reading > 1.5 × mean background: the simplest relative threshold. No network
  in DOMAIN.md publishes this factor (NADAM's fixed level is absolute, 1000 nSv/h); it stands for
  the rule of thumb "well above background".

Real networks learn from 2–3 years of validated history; here the history is a training window
at the start of the run (7 days by default) from which known incidents can be left out, as
validation would have removed them. Only the upper side of a range raises an alarm: a reading
below the normal range is a technical matter, not a radiological one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from detectors.frames import ALARM_COLUMNS
from radmon.models import Station

TRAINING_DAYS = 7.0
# BfS ODL-INFO: per-probe threshold ≈ mean + 0.02 µSv/h.
BFS_MARGIN_NSV_H = 20.0
# Japanese prefectures (JAEA; Ehime prefecture): normal range = mean ± 3σ, rain and no rain apart.
JAPAN_K_SIGMA = 3.0
JAPAN_RAIN_LOOKBACK = pd.Timedelta(hours=1)
# Fewer rain readings than this in training (one hour at 10-min values) give no usable rain
# range: the station then uses the range of all its training readings when it rains.
JAPAN_MIN_RAIN_READINGS = 6
FIXED_FACTOR = 1.5
# An exceedance opens an episode; it closes after this long without one.
CLOSE_AFTER = pd.Timedelta(hours=1)

FAR_FUTURE = pd.Timestamp("2200-01-01", tz="UTC")  # the end of a span that is still open

KIND_BFS = "bfs_mean_plus_20"
KIND_JAPAN = "japan_normal_range"
KIND_FIXED = "fixed_factor_background"


def empty_alarms() -> pd.DataFrame:
    """An alarms frame with no rows but the right columns and dtypes."""
    return pd.DataFrame(
        {
            "station_id": pd.Series(dtype=object),
            "start": pd.Series(dtype="datetime64[ns, UTC]"),
            "end": pd.Series(dtype="datetime64[ns, UTC]"),
            "kind": pd.Series(dtype=object),
            "category": pd.Series(dtype=object),
            "severity": pd.Series(dtype=object),
            "peak_nsv_h": pd.Series(dtype=float),
            "baseline_nsv_h": pd.Series(dtype=float),
        }
    )


def prepare_readings(readings: pd.DataFrame) -> pd.DataFrame:
    """The readings sorted by station and time, times in UTC, with a ``precip_mm_h`` column
    (NaN where unknown) and without readings that have no dose rate."""
    out = pd.DataFrame(
        {
            "time": pd.to_datetime(readings["time"], utc=True),
            "station_id": readings["station_id"].astype(str),
            "dose_rate_nsv_h": pd.to_numeric(readings["dose_rate_nsv_h"], errors="coerce"),
            "precip_mm_h": (
                pd.to_numeric(readings["precip_mm_h"], errors="coerce")
                if "precip_mm_h" in readings
                else np.nan
            ),
        }
    )
    out = out[out["dose_rate_nsv_h"].notna()]
    return out.sort_values(["station_id", "time"], kind="stable").reset_index(drop=True)


def default_train_until(readings: pd.DataFrame, days: float = TRAINING_DAYS) -> pd.Timestamp:
    """End of the default training window: *days* after the first reading."""
    return pd.to_datetime(readings["time"], utc=True).min() + pd.Timedelta(days=days)


def training_mask(
    readings: pd.DataFrame,
    train_until: pd.Timestamp,
    exclude: pd.DataFrame | None = None,
) -> np.ndarray:
    """Which readings the rules may learn from: before *train_until* and outside *exclude*.

    *exclude* lists spans (``station_id``, ``start``, ``end``; ``end`` NaT = open) of known
    incidents, left out as validation of the history would have left them out.
    """
    times = pd.to_datetime(readings["time"], utc=True)
    mask = (times < pd.Timestamp(train_until)).to_numpy().copy()
    if exclude is None or exclude.empty or not mask.any():
        return mask
    spans = exclude[["station_id", "start", "end"]].copy()
    spans["start"] = pd.to_datetime(spans["start"], utc=True)
    spans["end"] = pd.to_datetime(spans["end"], utc=True).fillna(FAR_FUTURE)
    candidates = pd.DataFrame(
        {"row": np.flatnonzero(mask), "station_id": readings["station_id"].to_numpy()[mask]}
    )
    candidates["time"] = times.to_numpy()[mask]
    hits = candidates.merge(spans, on="station_id")
    inside = hits.loc[(hits["time"] >= hits["start"]) & (hits["time"] <= hits["end"]), "row"]
    mask[inside.to_numpy()] = False
    return mask


def station_means(readings: pd.DataFrame, mask: np.ndarray) -> pd.Series:
    """Mean dose rate (nSv/h) of each station over the readings selected by *mask*."""
    chosen = readings.loc[mask]
    return chosen.groupby("station_id")["dose_rate_nsv_h"].mean()


def exceedance_episodes(
    frame: pd.DataFrame,
    exceed: np.ndarray,
    baseline: np.ndarray,
    kind: str,
    close_after: pd.Timedelta = CLOSE_AFTER,
) -> pd.DataFrame:
    """Alarm episodes from per-reading exceedances of *frame* (sorted by station, time).

    An exceedance opens an episode; later exceedances no more than *close_after* apart extend
    it. ``end`` is the last exceeding reading, or NaT when the station's data end before
    *close_after* has passed without one (the episode is still open).
    """
    exceed = np.asarray(exceed, dtype=bool)
    if not exceed.any():
        return empty_alarms()
    last_seen = frame.groupby("station_id")["time"].max()
    hits = pd.DataFrame(
        {
            "station_id": frame["station_id"].to_numpy()[exceed],
            "time": frame["time"].to_numpy()[exceed],
            "value": frame["dose_rate_nsv_h"].to_numpy()[exceed],
            "baseline": np.asarray(baseline, dtype=float)[exceed],
        }
    )
    hits["time"] = pd.to_datetime(hits["time"], utc=True)
    same_station = hits["station_id"].eq(hits["station_id"].shift())
    close = hits["time"].diff() <= close_after
    hits["episode"] = (~(same_station & close)).cumsum()
    grouped = hits.groupby("episode", sort=True)
    out = pd.DataFrame(
        {
            "station_id": grouped["station_id"].first(),
            "start": grouped["time"].min(),
            "end": grouped["time"].max(),
            "peak_nsv_h": grouped["value"].max(),
            "baseline_nsv_h": grouped["baseline"].first().round(2),
        }
    ).reset_index(drop=True)
    still_open = out["station_id"].map(last_seen) - out["end"] <= close_after
    out["end"] = out["end"].where(~still_open)
    out["kind"] = kind
    out["category"] = "radiological"
    out["severity"] = "warning"
    return out[ALARM_COLUMNS]


def _learn(
    readings: pd.DataFrame,
    train_until: pd.Timestamp | None,
    exclude: pd.DataFrame | None,
) -> tuple[pd.DataFrame, np.ndarray]:
    frame = prepare_readings(readings)
    until = default_train_until(frame) if train_until is None else pd.Timestamp(train_until)
    return frame, training_mask(frame, until, exclude)


def bfs_alarms(
    readings: pd.DataFrame,
    stations: Sequence[Station] = (),
    *,
    train_until: pd.Timestamp | None = None,
    exclude: pd.DataFrame | None = None,
    margin_nsv_h: float = BFS_MARGIN_NSV_H,
) -> pd.DataFrame:
    """BfS ODL style: alarm while a reading exceeds the station's training mean + 20 nSv/h."""
    frame, mask = _learn(readings, train_until, exclude)
    mean = frame["station_id"].map(station_means(frame, mask)).to_numpy(dtype=float)
    exceed = frame["dose_rate_nsv_h"].to_numpy() > mean + margin_nsv_h  # NaN (no training): never
    return exceedance_episodes(frame, exceed, mean, KIND_BFS)


def fixed_factor_alarms(
    readings: pd.DataFrame,
    stations: Sequence[Station] = (),
    *,
    train_until: pd.Timestamp | None = None,
    exclude: pd.DataFrame | None = None,
    factor: float = FIXED_FACTOR,
) -> pd.DataFrame:
    """A fixed multiple of background: alarm while a reading exceeds 1.5 × the training mean."""
    frame, mask = _learn(readings, train_until, exclude)
    mean = frame["station_id"].map(station_means(frame, mask)).to_numpy(dtype=float)
    exceed = frame["dose_rate_nsv_h"].to_numpy() > factor * mean
    return exceedance_episodes(frame, exceed, mean, KIND_FIXED)


def gauge_stations(frame: pd.DataFrame, stations: Sequence[Station] = ()) -> set[str]:
    """Stations with a rain gauge: as the stations say, else those whose readings carry precip."""
    if stations:
        return {s.station_id for s in stations if s.has_rain_gauge}
    has_precip = frame["precip_mm_h"].notna().groupby(frame["station_id"]).any()
    return set(has_precip.index[has_precip.to_numpy()])


def rain_state(
    frame: pd.DataFrame, gauges: set[str], lookback: pd.Timedelta = JAPAN_RAIN_LOOKBACK
) -> np.ndarray:
    """Whether each reading (of *frame*, sorted by station, time) is "in rain": the station has a
    gauge that shows > 0 now or within *lookback* before."""
    wet_time = frame["time"].where(frame["precip_mm_h"] > 0)
    last_wet = wet_time.groupby(frame["station_id"]).ffill()
    recent = (frame["time"] - last_wet) <= lookback
    return (recent & frame["station_id"].isin(gauges)).to_numpy()


def japan_alarms(
    readings: pd.DataFrame,
    stations: Sequence[Station] = (),
    *,
    train_until: pd.Timestamp | None = None,
    exclude: pd.DataFrame | None = None,
    k_sigma: float = JAPAN_K_SIGMA,
    lookback: pd.Timedelta = JAPAN_RAIN_LOOKBACK,
    min_rain_readings: int = JAPAN_MIN_RAIN_READINGS,
) -> pd.DataFrame:
    """Japanese prefectures' normal range: alarm above mean + 3σ of the station's rain or dry
    range, chosen by its own gauge (no gauge: always the dry range, learnt from all readings)."""
    frame, mask = _learn(readings, train_until, exclude)
    wet = rain_state(frame, gauge_stations(frame, stations), lookback)
    dose = frame["dose_rate_nsv_h"]
    station = frame["station_id"]
    dry_stats = dose[mask & ~wet].groupby(station[mask & ~wet]).agg(["mean", "std"])
    wet_stats = dose[mask & wet].groupby(station[mask & wet]).agg(["mean", "std", "count"])
    all_stats = dose[mask].groupby(station[mask]).agg(["mean", "std"])
    wet_stats = wet_stats[wet_stats["count"] >= min_rain_readings][["mean", "std"]]
    wet_stats = wet_stats.combine_first(all_stats)  # too little rain in training: all readings
    dry_mean = station.map(dry_stats["mean"]).to_numpy(dtype=float)
    dry_upper = dry_mean + k_sigma * station.map(dry_stats["std"]).to_numpy(dtype=float)
    wet_mean = station.map(wet_stats["mean"]).to_numpy(dtype=float)
    wet_upper = wet_mean + k_sigma * station.map(wet_stats["std"]).to_numpy(dtype=float)
    upper = np.where(wet, wet_upper, dry_upper)
    baseline = np.where(wet, wet_mean, dry_mean)
    exceed = dose.to_numpy() > upper
    return exceedance_episodes(frame, exceed, baseline, KIND_JAPAN)


Rule = Callable[..., pd.DataFrame]
RULES: dict[str, Rule] = {
    "bfs": bfs_alarms,
    "japan": japan_alarms,
    "fixed_1.5x": fixed_factor_alarms,
}
