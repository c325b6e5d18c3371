"""The technical tests: the probe or its data is wrong, not the radiation.

A stuck probe repeats one value; counting noise makes an exact repeat unlikely (a few per cent
for a low-count GM tube), so ``stuck_readings`` identical readings in a row (6 by default:
p ≈ 0.03⁵ per reading) is a fault, not chance. A probe or a feed that rounds coarsely for its
noise (0.01 µSv/h on a GM tube's 100 nSv/h, whole nSv/h on a quiet NaI) repeats by chance
much more often, a quarter of its readings or more; each station learns how often it repeats
(outside long runs) and a run is stuck only once chance would make it with probability
``STUCK_CHANCE``. A sudden change in the noise level (a failing
tube, interference) shows as the ratio of a fast to a slow average of the reading-to-reading
change. Out of range covers negative, non-finite and implausible readings.
"""

from __future__ import annotations

from collections.abc import Callable

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


# Chance repeats: how often a reading repeats the one before, assumed as if seen in
# PRIOR_REPEAT_TRIALS trials before a station shows its own; trials are remembered for about
# REPEAT_MEMORY_TRIALS.
PRIOR_REPEAT_RATE = 0.02
PRIOR_REPEAT_TRIALS = 6.0
REPEAT_MEMORY_TRIALS = 1008.0
# A run of chance repeats this unlikely is a fault: at the prior rate that is the six
# readings of ``stuck_readings``.
STUCK_CHANCE = 1e-8
# A station repeating more often than this rounds coarsely for its noise: a quieter stretch
# is its rounding, not a change of the probe.
COARSE_REPEAT_RATE = 0.1
# A station repeating more often than this carries almost no information in a repeat; its
# runs still count as stuck, after a bit more than a day of 10-minute readings.
MAX_REPEAT_RATE = 0.9


def repeat_rate(hits: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """The rate of hits, the prior weighing as PRIOR_REPEAT_TRIALS trials."""
    prior = PRIOR_REPEAT_RATE * PRIOR_REPEAT_TRIALS
    return (hits + prior) / (trials + PRIOR_REPEAT_TRIALS)


def learn_trials(
    hits: np.ndarray, trials: np.ndarray, new_hits: np.ndarray, new_trials: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Add *new_hits* in *new_trials*; older trials fade."""
    fade = (1.0 - 1.0 / REPEAT_MEMORY_TRIALS) ** np.asarray(new_trials, dtype=np.float64)
    return hits * fade + new_hits, trials * fade + new_trials


def stuck_after(rate: np.ndarray, least: int) -> np.ndarray:
    """Identical readings in a row that make a probe stuck: *least*, or the run that chance
    repeats at *rate* reach with probability ``STUCK_CHANCE``, whichever is longer."""
    chance = np.log(np.clip(rate, 1e-9, MAX_REPEAT_RATE))
    return np.maximum(least, 1 + np.ceil(np.log(STUCK_CHANCE) / chance))


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


def noise_changed(
    fast: np.ndarray,
    slow: np.ndarray,
    n: np.ndarray,
    ratio: float,
    coarse: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """The noise grew or fell by *ratio*; only grew where the resolution is *coarse* (asked
    of the rows whose noise fell), since there a run of repeats is chance, not a quieter
    probe."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = fast / slow
    ready = n >= NOISE_MIN_READINGS
    fell = ready & (r < 1.0 / ratio)
    if np.count_nonzero(fell):
        rows = np.flatnonzero(fell)
        fell[rows[coarse(rows)]] = False
    return (ready & (r > ratio)) | fell
