"""What a probe sees without a source: background, radon-progeny cycle, drift, washout, counts.

All functions work on arrays over stations; none loops over stations in Python.
"""

from __future__ import annotations

import math

import numpy as np

from ingest.simulator.network import Network

# Cap on the linear drift (fraction), so a long live run does not wander off: an assumption.
DRIFT_CAP = 0.03
# Day of year of the seasonal maximum: mid-January, dry soil in the dry season (wet soil shields
# the terrestrial component a little); an assumption, the amplitude is ~1 %.
SEASONAL_PEAK_DAY = 15.0

# Rain washout, calibrated on one measured shower: 14 mm in 15 min raised 106 → 196 nSv/h
# (BfS; PTB Braunschweig; DOMAIN.md). The deposition rate goes with the square root of the rain
# rate (Bottardi et al., Atmos. Environ. 2020).
REFERENCE_RAIN_MM_H = 56.0
REFERENCE_DURATION_H = 0.25
REFERENCE_BACKGROUND_NSV_H = 106.0
REFERENCE_EXCESS_NSV_H = 90.0
REFERENCE_HALF_LIFE_MIN = 37.5  # middle of the 30–45 min apparent half-life (DOMAIN.md)
# The progeny in the air are a reservoir that rain empties and radon refills over hours, so the
# first shower after a dry spell gives the highest peak (Bottardi et al. 2020). The two rates are
# assumptions, chosen so that hours of heavy rain stay near the observed "up to a doubling" (BfS)
# and a second equal shower an hour after the first peaks about a quarter lower.
DEPLETION_PER_H_PER_SQRT_MM_H = 0.6
REFILL_TIME_H = 4.0


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


def _washout_step(
    excess: np.ndarray,
    reservoir: np.ndarray,
    rain_mm_h: np.ndarray,
    dt_h: float,
    drive: np.ndarray,
    decay_per_h: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact solution over *dt_h* of constant rain for
    dR/dt = -d·√r·R + (1 - R)/τ   (reservoir of progeny in the air, 0..1)
    dE/dt = k·√r·R - λ·E          (excess dose rate from progeny on the ground)
    so the result does not depend on the reporting interval.
    """
    sqrt_rain = np.sqrt(rain_mm_h)
    mu = DEPLETION_PER_H_PER_SQRT_MM_H * sqrt_rain + 1.0 / REFILL_TIME_H
    r_inf = (1.0 / REFILL_TIME_H) / mu
    e_lam = np.exp(-decay_per_h * dt_h)
    e_mu = np.exp(-mu * dt_h)
    gap = decay_per_h - mu
    close = np.abs(gap) < 1e-9
    # ∫₀ᵗ e^{-μu} e^{-λ(t-u)} du, with its limit t·e^{-λt} when λ = μ
    phi = np.where(close, dt_h * e_lam, (e_mu - e_lam) / np.where(close, 1.0, gap))
    new_reservoir = r_inf + (reservoir - r_inf) * e_mu
    source = drive * sqrt_rain * (r_inf * (1.0 - e_lam) / decay_per_h + (reservoir - r_inf) * phi)
    return excess * e_lam + source, new_reservoir


def _reference_gain() -> float:
    """Drive per nSv/h of background that reproduces the reference shower's peak."""
    one = np.ones(1)
    unit, _ = _washout_step(
        np.zeros(1),
        one,
        one * REFERENCE_RAIN_MM_H,
        REFERENCE_DURATION_H,
        one * REFERENCE_BACKGROUND_NSV_H,
        one * (math.log(2) / (REFERENCE_HALF_LIFE_MIN / 60.0)),
    )
    return REFERENCE_EXCESS_NSV_H / float(unit[0])


WASHOUT_GAIN = _reference_gain()


class Washout:
    """Per-station rain-washout state: the excess dose rate and the air's progeny reservoir."""

    def __init__(self, background_nsv_h: np.ndarray, gain: np.ndarray, half_life_min: np.ndarray):
        self.drive = WASHOUT_GAIN * gain * background_nsv_h
        self.decay_per_h = math.log(2) / (half_life_min / 60.0)
        self.excess_nsv_h = np.zeros_like(background_nsv_h, dtype=float)
        self.reservoir = np.ones_like(background_nsv_h, dtype=float)

    def advance(self, rain_mm_h: np.ndarray, dt_h: float) -> np.ndarray:
        """Advance by *dt_h* hours of rain at *rain_mm_h*; returns the excess at the end (nSv/h)."""
        self.excess_nsv_h, self.reservoir = _washout_step(
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
