"""What a probe sees without a source: background, radon-progeny cycle, drift, washout, counts.

All functions work on arrays over stations; none loops over stations in Python.
"""

from __future__ import annotations

import math

import numpy as np

from ingest.simulator.network import Network
from radmon.washout import WASHOUT_GAIN, washout_step

# Cap on the linear drift (fraction), so a long live run does not wander off: an assumption.
DRIFT_CAP = 0.03
# Day of year of the seasonal maximum: mid-January, dry soil in the dry season (wet soil shields
# the terrestrial component a little); an assumption, the amplitude is ~1 %.
SEASONAL_PEAK_DAY = 15.0


def baseline_nsv_h(
    net: Network, days_elapsed: float, day_of_year: float, local_hour: float
) -> np.ndarray:
    """Background with its diurnal radon-progeny cycle and slow drift, for every station."""
    diurnal = 1.0 + 0.5 * net.diurnal_swing * np.cos(
        2.0 * math.pi * (local_hour - net.diurnal_peak_h) / 24.0
    )
    drift = np.clip(net.drift_per_day * days_elapsed, -DRIFT_CAP, DRIFT_CAP)
    drift += net.seasonal_amplitude * math.cos(
        2.0 * math.pi * (day_of_year - SEASONAL_PEAK_DAY) / 365.25
    )
    return net.background_nsv_h * diurnal * (1.0 + drift)


class Washout:
    """Per-station rain-washout state: the excess dose rate and the air's progeny reservoir."""

    def __init__(self, background_nsv_h: np.ndarray, gain: np.ndarray, half_life_min: np.ndarray):
        self.drive = WASHOUT_GAIN * gain * background_nsv_h
        self.decay_per_h = math.log(2) / (half_life_min / 60.0)
        self.excess_nsv_h = np.zeros_like(background_nsv_h, dtype=float)
        self.reservoir = np.ones_like(background_nsv_h, dtype=float)

    def advance(self, rain_mm_h: np.ndarray, dt_h: float) -> np.ndarray:
        """Advance by *dt_h* hours of rain at *rain_mm_h*; returns the excess at the end (nSv/h)."""
        self.excess_nsv_h, self.reservoir = washout_step(
            self.excess_nsv_h, self.reservoir, rain_mm_h, dt_h, self.drive, self.decay_per_h
        )
        return self.excess_nsv_h


def count(
    rng: np.random.Generator, mean_nsv_h: np.ndarray, sensitivity: np.ndarray, interval_s: float
) -> np.ndarray:
    """Poisson counts over the interval for a mean dose rate and a probe sensitivity (cps/µSv/h)."""
    return rng.poisson(mean_nsv_h * 1e-3 * sensitivity * interval_s)


def counts_to_nsv_h(counts: np.ndarray, sensitivity: np.ndarray, interval_s: float) -> np.ndarray:
    """What the probe reports: its counts converted back with its calibration."""
    return counts * 1e3 / (sensitivity * interval_s)
