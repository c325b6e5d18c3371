"""The technical tests: the probe or its data is wrong, not the radiation.

A stuck probe repeats one value; counting noise makes an exact repeat unlikely (a few per cent
for a low-count GM tube), so ``stuck_readings`` identical readings in a row (6 by default:
p ≈ 0.03⁵ per reading) is a fault, not chance. A sudden change in the noise level (a failing
tube, interference) shows as the ratio of a fast to a slow average of the reading-to-reading
change. Out of range covers negative, non-finite and implausible readings.
"""

from __future__ import annotations

import numpy as np

# Readings over which the fast noise average reacts (the slow one uses the baseline's time).
NOISE_FAST_READINGS = 12.0
NOISE_MIN_READINGS = 144
# Beyond this log-ratio of fast to slow (a factor 1.5) the slow average stops learning.
NOISE_STEADY_LOG = 0.405
# One jump (a step, a transient) may not move the fast average more than this many slow ones.
NOISE_CLIP = 6.0


def out_of_range(x: np.ndarray, low: float, high: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(x) | (x < low) | (x > high)


def repeats(x: np.ndarray, last: np.ndarray, count: np.ndarray) -> np.ndarray:
    """How many times in a row each reading repeated the one before."""
    return np.where(x == last, count + 1, 0)


def noise_update(
    fast: np.ndarray, slow: np.ndarray, change: np.ndarray, n: np.ndarray, slow_rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fast and slow averages of the relative reading-to-reading change."""
    first = n <= 1
    limit = np.where(first | ~np.isfinite(slow), np.inf, NOISE_CLIP * slow)
    clipped = np.minimum(change, limit)
    fast = np.where(first, change, fast + (clipped - fast) / NOISE_FAST_READINGS)
    # the slow average holds still while the fast one says the noise has changed, or it would
    # learn the new noise before the ratio could show it
    with np.errstate(invalid="ignore", divide="ignore"):
        steady = np.abs(np.log(fast / slow)) < NOISE_STEADY_LOG
    rate = np.where(steady | (n < NOISE_MIN_READINGS), np.maximum(1.0 / n, slow_rate), 0.0)
    slow = np.where(first, change, slow + rate * (clipped - slow))
    return fast, slow


def noise_changed(fast: np.ndarray, slow: np.ndarray, n: np.ndarray, ratio: float) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        r = fast / slow
    return (n >= NOISE_MIN_READINGS) & ((r > ratio) | (r < 1.0 / ratio))
