"""The simulated network: where each station stands, its probe, and its own background physics.

Every per-station property is an array indexed by station, so the stepper stays vectorised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ingest.simulator.config import SimulationConfig
from ingest.simulator.province import Province
from radmon.models import Station

PROBE_GM = "GM"
PROBE_SCINTILLATOR = "NaI"

# Cosmic component: ≈ 35 nSv/h at sea level, doubling every ~1500 m (BSH, via DOMAIN.md).
COSMIC_SEA_LEVEL_NSV_H = 35.0
COSMIC_DOUBLING_M = 1500.0
# Terrestrial component: Vietnam outdoor mean 62 nGy/h over 292 soil samples (Hien et al., Sci.
# World J. 2002); taken here as nSv/h with a log-normal spread between sites.
TERRESTRIAL_MEDIAN_NSV_H = 62.0
TERRESTRIAL_LOG_SPREAD = 0.4
# Station background kept within 60–200 nSv/h, the span of real networks (BfS ODL 50–180 nSv/h,
# NADAM 80–260 nSv/h daily means; DOMAIN.md).
BACKGROUND_RANGE_NSV_H = (60.0, 200.0)
# Probe sensitivity (counts per second per µSv/h). GM: a pancake GM reads 334 CPM per µSv/h
# (≈ 5.6 cps, Safecast bGeigie; DOMAIN.md) and larger tubes up to ~30 cps. NaI(Tl)
# scintillators: 300–1000 cps per µSv/h (typical data-sheet values; not in DOMAIN.md, unverified).
GM_SENSITIVITY = (5.0, 30.0)
SCINTILLATOR_SENSITIVITY = (300.0, 1000.0)
# Radon-progeny diurnal cycle: 2–14 % swing, peak at night/early morning (Datar et al., arXiv 2019).
DIURNAL_SWING = (0.02, 0.14)
DIURNAL_PEAK_LOCAL_HOUR = (4.0, 7.0)
# Slow drift (instrument ageing, soil moisture): an assumption of a couple of percent, not a
# measured figure. Linear rate per 30 days and a yearly cycle, capped in physics.py.
DRIFT_PER_30_DAYS_SD = 0.01
DRIFT_PER_30_DAYS_MAX = 0.02
SEASONAL_AMPLITUDE = (0.005, 0.015)
# Rain washout: station-to-station spread of the response around the calibrated gain, and the
# apparent half-life of the excess after rain (²¹⁴Pb 26.8 min, ²¹⁴Bi 19.9 min: 30–45 min;
# DOMAIN.md).
WASHOUT_GAIN_SPREAD = (0.8, 1.2)
WASHOUT_HALF_LIFE_MIN = (30.0, 45.0)

_KM_PER_DEG = math.pi / 180 * 6371.0


@dataclass(frozen=True)
class Network:
    """The stations and their per-station physics parameters (arrays indexed like ``stations``)."""

    stations: list[Station]
    ids: np.ndarray
    town: np.ndarray
    x_km: np.ndarray
    y_km: np.ndarray
    background_nsv_h: np.ndarray
    sensitivity_cps_per_usv_h: np.ndarray
    has_gauge: np.ndarray
    diurnal_swing: np.ndarray
    diurnal_peak_h: np.ndarray
    drift_per_day: np.ndarray
    seasonal_amplitude: np.ndarray
    washout_gain: np.ndarray
    washout_half_life_min: np.ndarray

    def __len__(self) -> int:
        return len(self.stations)


def allocate(weights: np.ndarray, n: int) -> list[int]:
    """Town index of each station in order: one per town by weight first, then by D'Hondt.

    Every town gets a station before any gets a second: a network covers its districts first.
    """
    order = np.argsort(-weights, kind="stable")
    seats = [int(i) for i in order[:n]]
    counts = np.zeros(len(weights))
    counts[seats] = 1
    while len(seats) < n:
        best = int(np.argmax(weights / (counts + 1)))
        seats.append(best)
        counts[best] += 1
    return seats


def build_network(
    province: Province, config: SimulationConfig, rng: np.random.Generator
) -> Network:
    """Place ``config.n_stations`` stations near the province's towns and draw their parameters."""
    n = config.n_stations
    towns = province.towns
    seats = np.array(allocate(np.array([t.weight for t in towns]), n))

    town_lat = np.array([t.lat for t in towns])[seats]
    town_lon = np.array([t.lon for t in towns])[seats]
    jitter = np.array([t.jitter_km for t in towns])[seats]
    b_low = np.array([t.bearing_deg[0] for t in towns])[seats]
    b_high = np.array([t.bearing_deg[1] for t in towns])[seats]
    distance = jitter * np.sqrt(rng.uniform(0.0, 1.0, n))  # uniform over the sector's area
    bearing = np.radians(rng.uniform(b_low, b_high))
    lat = town_lat + distance * np.cos(bearing) / _KM_PER_DEG
    lon = town_lon + distance * np.sin(bearing) / (_KM_PER_DEG * np.cos(np.radians(town_lat)))
    lat, lon = np.round(lat, 5), np.round(lon, 5)
    relief = np.array([t.relief_m for t in towns])[seats]
    elevation = np.round(
        np.array([t.elevation_m for t in towns])[seats] + relief * rng.uniform(0, 1, n)
    )

    scint = np.zeros(n, dtype=bool)
    scint[rng.permutation(n)[: round(n * config.scintillator_fraction)]] = True
    sensitivity = np.where(
        scint,
        rng.uniform(*SCINTILLATOR_SENSITIVITY, n),
        rng.uniform(*GM_SENSITIVITY, n),
    ).round(1)
    gauge = np.zeros(n, dtype=bool)
    gauge[rng.permutation(n)[: round(n * config.gauge_fraction)]] = True

    terrestrial = TERRESTRIAL_MEDIAN_NSV_H * rng.lognormal(0.0, TERRESTRIAL_LOG_SPREAD, n)
    cosmic = COSMIC_SEA_LEVEL_NSV_H * 2.0 ** (elevation / COSMIC_DOUBLING_M)
    background = np.clip(terrestrial + cosmic, *BACKGROUND_RANGE_NSV_H)

    drift = np.clip(
        rng.normal(0.0, DRIFT_PER_30_DAYS_SD, n), -DRIFT_PER_30_DAYS_MAX, DRIFT_PER_30_DAYS_MAX
    )
    width = max(3, len(str(n)))
    ids = [f"{province.station_prefix}{i + 1:0{width}d}" for i in range(n)]
    numbers: dict[int, int] = {}
    stations = []
    for i in range(n):
        town = towns[seats[i]]
        numbers[seats[i]] = numbers.get(seats[i], 0) + 1
        stations.append(
            Station(
                station_id=ids[i],
                name=f"{town.name} {numbers[seats[i]]}",
                lat=float(lat[i]),
                lon=float(lon[i]),
                elevation_m=float(elevation[i]),
                probe_model=PROBE_SCINTILLATOR if scint[i] else PROBE_GM,
                district=town.district,
                timezone=province.timezone,
                interval_s=config.interval_s,
                sensitivity_cps_per_usv_h=float(sensitivity[i]),
                has_rain_gauge=bool(gauge[i]),
            )
        )
    x, y = province.to_xy(lat, lon)
    return Network(
        stations=stations,
        ids=np.array(ids, dtype=object),
        town=seats,
        x_km=x,
        y_km=y,
        background_nsv_h=background,
        sensitivity_cps_per_usv_h=sensitivity,
        has_gauge=gauge,
        diurnal_swing=rng.uniform(*DIURNAL_SWING, n),
        diurnal_peak_h=rng.uniform(*DIURNAL_PEAK_LOCAL_HOUR, n),
        drift_per_day=drift / 30.0,
        seasonal_amplitude=rng.uniform(*SEASONAL_AMPLITUDE, n),
        washout_gain=rng.uniform(*WASHOUT_GAIN_SPREAD, n),
        washout_half_life_min=rng.uniform(*WASHOUT_HALF_LIFE_MIN, n),
    )
