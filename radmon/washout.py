"""Rain washout of radon progeny: the excess dose rate a shower adds, as a function of rain.

The largest natural disturbance of a dose-rate network (up to a doubling, DOMAIN.md). The
simulator uses it as its physics and the detectors as their rain model (with a gain each
station learns), so both rest on the same published facts.
"""

from __future__ import annotations

import math

import numpy as np

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


def washout_step(
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
    unit, _ = washout_step(
        np.zeros(1),
        one,
        one * REFERENCE_RAIN_MM_H,
        REFERENCE_DURATION_H,
        one * REFERENCE_BACKGROUND_NSV_H,
        one * (math.log(2) / (REFERENCE_HALF_LIFE_MIN / 60.0)),
    )
    return REFERENCE_EXCESS_NSV_H / float(unit[0])


WASHOUT_GAIN = _reference_gain()
