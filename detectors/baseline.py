"""Each station's background: a slowly drifting level times a learnt diurnal profile, and the
spread of readings around it.

The radon-progeny cycle moves the background 2–14 % over a day (DOMAIN.md), far more than a
scintillator's counting noise, so a detector that ignores it either misses small steps or alarms
every dawn. The profile has one value per local hour, interpolated between hour centres, and
learns only from clean readings (no alarm, no rain, no fault) so that a source or a shower does
not become the background.
"""

from __future__ import annotations

import numpy as np

from detectors.columns import Column, Columns

BINS = 24
# Relative spread assumed before a station has enough history to measure its own.
PRIOR_SPREAD = 0.10
PRIOR_READINGS = 4
# A reading far outside the spread moves the baseline only as far as this many sigma (Huber).
HUBER_SIGMA = 3.0


class Baseline:
    """Level, diurnal profile and residual spread of every station."""

    def __init__(self) -> None:
        self.table = Columns(
            {
                "level": Column(np.float64, np.nan),
                "profile": Column(np.float64, 1.0, BINS),
                "bin_count": Column(np.int64, 0, BINS),
                "clean": Column(np.int64, 0),
                "spread2": Column(np.float64, PRIOR_SPREAD**2),  # relative residual variance
            }
        )

    def grow(self, n: int) -> None:
        self.table.grow(n)

    @staticmethod
    def bins(local_hour: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The two profile bins around each hour and the weight of the second."""
        pos = local_hour - 0.5
        low = np.floor(pos)
        frac = pos - low
        b0 = low.astype(np.int64) % BINS
        return b0, (b0 + 1) % BINS, frac

    def expected(
        self, idx: np.ndarray, b0: np.ndarray, b1: np.ndarray, frac: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expected dose rate (nSv/h, NaN before the first reading) and its relative spread."""
        t = self.table
        profile = t.profile[idx, b0] * (1.0 - frac) + t.profile[idx, b1] * frac
        return t.level[idx] * profile, np.sqrt(t.spread2[idx])

    def learn(
        self,
        idx: np.ndarray,
        x: np.ndarray,
        residual_rel: np.ndarray,
        b0: np.ndarray,
        b1: np.ndarray,
        frac: np.ndarray,
        level_rate: np.ndarray,
        profile_rate: np.ndarray,
    ) -> None:
        """Move each station's baseline toward its clean readings *x*.

        *residual_rel* is (x - expected) / expected; rates are per reading (the inverse of the
        time constant in readings). Early on the rates are 1/n, a plain running mean.
        """
        if not len(idx):
            return
        t = self.table
        level = t.level[idx]  # copies of the stations' rows, written back once
        spread2 = t.spread2[idx]
        first = np.isnan(level)
        if np.count_nonzero(first):
            level[first] = x[first]
            residual_rel = np.where(first, 0.0, residual_rel)
        spread = np.sqrt(spread2)
        limit = HUBER_SIGMA * spread
        clipped = residual_rel.clip(-limit, limit)  # np.clip without its wrapper
        clean = t.clean[idx] + 1
        t.clean[idx] = clean
        # level: a deseasonalised running mean
        rate = np.maximum(1.0 / clean, level_rate)
        level *= 1.0 + rate * clipped
        # profile: gradient step on the two bins the reading falls between
        start = np.arange(0, len(idx) * BINS, BINS)
        profiles = t.profile[idx]
        counts = t.bin_count[idx]
        flat, flat_counts = profiles.reshape(-1), counts.reshape(-1)  # views of the copies
        at0, at1 = start + b0, start + b1
        profile = flat[at0] * (1.0 - frac) + flat[at1] * frac
        err = clipped * profile
        for at, w in ((at0, 1.0 - frac), (at1, frac)):
            n = flat_counts[at] + 1
            flat_counts[at] = n
            flat[at] += np.maximum(1.0 / n, profile_rate) * w * err
        t.bin_count[idx] = counts
        mean = np.add.reduce(profiles, axis=1) / BINS  # profiles.mean(axis=1), unwrapped
        profiles /= mean[:, None]
        t.profile[idx] = profiles
        level *= mean
        t.level[idx] = level
        # spread: of the residuals seen, bounded so one outlier cannot blow it up; the prior
        # counts as a few readings so the first ones do not make it absurdly small
        square = np.minimum(residual_rel**2, 2.0 * limit**2)
        spread_rate = np.maximum(1.0 / (clean + PRIOR_READINGS), 3.0 * level_rate)
        t.spread2[idx] = spread2 + spread_rate * (square - spread2)
