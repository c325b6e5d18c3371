"""The radiological tests, as array functions over the stations reporting at one time.

- absolute levels (IAEA OIL-based defaults, configurable per station);
- a CUSUM (Page 1954) of the Gaussian log-likelihood ratio for a step of ``step_relative`` on
  the residual against the baseline: optimal under Lorden's criterion, and with counting
  statistics (the Poisson variance from the probe's sensitivity) as the noise floor it comes
  within a small factor of the Poisson floor of DOMAIN.md;
- a one-reading test for a source carried past the probe, and a jump test for one carried
  past in rain, when the rain model's uncertainty is too wide for the first.
"""

from __future__ import annotations

import numpy as np

# A one-interval rise of at least this share of the reading before (and of the background)
# is beyond washout: with ``transient``'s other conditions it marks a source passing by.
JUMP_RELATIVE = 1.0


def level_rank(x: np.ndarray, thresholds: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Severity rank of the highest level each reading reaches (-1: none).

    *thresholds* and *ranks* are per reading (rows) and level (columns); unused levels are NaN.
    """
    with np.errstate(invalid="ignore"):
        crossed = x[:, None] >= thresholds
    return np.where(crossed, ranks, -1).max(axis=1, initial=-1)


def cusum(
    previous: np.ndarray,
    residual: np.ndarray,
    sigma: np.ndarray,
    shift: np.ndarray,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One CUSUM update for a step of *shift* (nSv/h); returns the statistic and each reading's
    log-likelihood ratio.

    One reading moves the statistic by at most the threshold, so a single outlier is the
    transient test's business, not a step; the statistic is capped at twice the threshold so it
    falls back within a few readings once the step is gone.
    """
    llr = shift / sigma**2 * (residual - shift / 2.0)
    llr = llr.clip(-threshold, threshold)  # np.clip without its wrapper
    return (previous + llr).clip(0.0, 2.0 * threshold), llr


def transient(
    residual: np.ndarray, sigma: np.ndarray, expected: np.ndarray, k_sigma: float, relative: float
) -> np.ndarray:
    """A reading far above both the noise and the background: a source passing by."""
    return (residual >= k_sigma * sigma) & (residual >= relative * expected)


def jump(
    x: np.ndarray, previous: np.ndarray, floor: np.ndarray, noise: np.ndarray, k_sigma: float
) -> np.ndarray:
    """A reading that rises from the one before by more than washout can in one interval: by
    at least ``JUMP_RELATIVE`` of both that reading and *floor* (the background), and by
    *k_sigma* of the *noise* of one reading without the rain model's uncertainty. The first
    shower after a dry spell lifts the dose rate by 50-100 % over a quarter of an hour
    (DOMAIN.md), so a source passing by in heavy rain stands out this way where the rain
    model's wide uncertainty hides it from :func:`transient`."""
    rise = x - previous
    with np.errstate(invalid="ignore"):  # NaN: no reading before
        return (rise >= JUMP_RELATIVE * np.fmax(previous, floor)) & (
            rise >= k_sigma * np.sqrt(2.0) * noise
        )


def poisson_variance(expected: np.ndarray, sensitivity: np.ndarray, interval_s: np.ndarray):
    """Variance (nSv/h)² of a reading from counting alone; NaN where the sensitivity is unknown.

    A probe of S counts/s per µSv/h counts λ = µ·1e-3·S·Δt in an interval, and reports
    counts·1e3/(S·Δt), so the variance is µ·1e3/(S·Δt).
    """
    return expected * 1e3 / (sensitivity * interval_s)
