"""Rises at stations that cannot see their own rain, held until their shape rules out washout.

A shower no gauge sees looks, for its first readings, like a source left near the probe: both
lift the dose rate. What tells them apart is the shape. A source is a step: background, at most
one reading partly lifted, then one level that stays. Washout builds up while the rain falls
(over several readings in widespread rain) and, once it stops, decays with the half-life of the
radon progeny (30–45 min, DOMAIN.md). So a statistical step or regional rise at a station
without a gauge opens an alarm only when the readings from just before the rise are a step and
no decay from an early stop of the rain explains the held readings nearly as well. Once no gauge
in the area has seen rain since before those readings, a level that was already up when the hold
began counts as a step too: a source set down while a shower nearby widened the spread (so the
CUSUM fired hours late) would otherwise find no background reading left to show its onset. A
rise that is no step by the end of the window slides on (the oldest reading goes) and is judged
again once its area has been dry for all of it; it goes (its excess back at the background for
``BACK`` readings, even while the CUSUM, slow to fall with the wide spread of unseen rain, stays
up), or after ``SUSTAINED_H`` it opens an alarm whatever its shape, since no unseen shower lasts
that long. A station with no gauge in its area has no dry spell anyone can vouch for: its holds
take the first path only. The cost is delay at those stations, about three readings for a clear
step, and the guard is only as good as the shape: a burst of heavy first rain that lifts one
reading by more than ``UNSEEN_TRANSIENT_RELATIVE`` still counts as a passing source.
"""

from __future__ import annotations

import numpy as np

from detectors.columns import Column, Columns
from detectors.rain import DECAY_PER_H

WINDOW = 12  # readings held (2 h at 10 min); a rise not judged a step by then slides on
BEFORE = 6  # readings before the hold, which show the onset
SUSTAINED_H = 12.0  # a rise held this long opens an alarm whatever its shape
# A rise held this many readings whose mean excess over them is below BACK_RELATIVE (half the
# +10 % step the CUSUM is tuned for) has gone: its hold ends.
BACK = 6
BACK_RELATIVE = 0.05
LEVEL_MIN = 0.05  # a step's level at least this (relative): a tail of washout is no step
MIN_READINGS = 4  # the shortest hold: fewer cannot show a decay at 10-min intervals
MIN_AFTER_PEAK = 3  # a decay is fitted to at least this many readings
LAST_STOP = 2  # unseen rain stops within this many readings of the window's start
DECAY_EVIDENCE = 9.0  # χ² by which the flat level must beat every washout decay
FLAT_CHI2 = 2.5  # per degree of freedom: the excess is one level, not a rise or a fall
# A passing source at a station without a gauge must lift one reading this much above the
# background: the first shower after a dry spell alone lifts it by +50–100 % (DOMAIN.md), and a
# source worth the name (2 × background) still clears it through the counting noise.
UNSEEN_TRANSIENT_RELATIVE = 0.9


class UnseenRain:
    """Per station: its latest relative excesses, and those since a held rise began."""

    def __init__(self) -> None:
        self.table = Columns(
            {
                "n": Column(np.int64, 0),  # readings held (0: no hold)
                "held_h": Column(np.float64, 0.0),  # hours since the hold began
                "recent": Column(np.float64, np.nan, BEFORE),  # the excess before this reading
                "recent_var": Column(np.float64, np.nan, BEFORE),
                "excess": Column(np.float64, np.nan, BEFORE + WINDOW),  # before + held
                "var": Column(np.float64, np.nan, BEFORE + WINDOW),
            }
        )

    def grow(self, n: int) -> None:
        self.table.grow(n)

    def began(self, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        """When each station's held rise began (epoch s): its time *t* for a station not held."""
        return t - np.round(self.table.held_h[idx] * 3600.0)

    def judge(
        self,
        idx: np.ndarray,
        firing: np.ndarray,
        excess: np.ndarray,
        var: np.ndarray,
        interval_s: np.ndarray,
        dry_h: np.ndarray,
    ) -> np.ndarray:
        """Which of the *firing* stations *idx* (no gauge, no alarm open) have a rise that is not
        washout; every other station's hold ends. *excess* and *var* are relative to the
        background, *var* without the rain model's uncertainty; *dry_h*: hours since a gauge in
        the station's area saw rain."""
        t = self.table
        if np.count_nonzero(firing):
            # a held rise back at the background has gone, though the CUSUM may stay up for
            # hours while the unseen-rain spread is wide: its hold ends (else the shower would
            # reach SUSTAINED_H), and a later rise is judged from its own onset
            rows = idx[firing]
            last = np.concatenate([t.recent[rows, 1 - BACK :], excess[firing][:, None]], axis=1)
            gone = (t.n[rows] >= BACK) & (last.mean(axis=1) < BACK_RELATIVE)
            if np.count_nonzero(gone):
                firing = firing.copy()
                firing[np.flatnonzero(firing)[gone]] = False
        idle = idx[~firing]
        t.n[idle] = 0
        t.held_h[idle] = 0.0
        rows = idx[firing]
        out = np.zeros(len(idx), dtype=bool)
        if len(rows):
            n = t.n[rows]
            start = rows[n == 0]
            t.held_h[rows] = np.where(n == 0, 0.0, t.held_h[rows] + interval_s[firing] / 3600.0)
            t.excess[start, :BEFORE] = t.recent[start]
            t.var[start, :BEFORE] = t.recent_var[start]
            adding = n < WINDOW
            add = rows[adding]
            t.excess[add, BEFORE + n[adding]] = excess[firing][adding]
            t.var[add, BEFORE + n[adding]] = var[firing][adding]
            if not adding.all():  # a full window slides on: its oldest reading goes
                full = rows[~adding]
                t.excess[full] = _shifted(t.excess[full], excess[firing][~adding])
                t.var[full] = _shifted(t.var[full], var[firing][~adding])
            n = np.where(adding, n + 1, n)
            t.n[rows] = n
            step_s = interval_s[firing]
            # the area dry since before the readings judged: no washout began among them, so
            # a level that was already up when the hold began (or when the window slid past
            # its start) is a step too
            settled = dry_h[firing] * 3600.0 >= (BEFORE + n) * step_s
            ready = np.where(adding, n >= MIN_READINGS, settled)
            confirmed = np.zeros(len(rows), dtype=bool)
            if np.count_nonzero(ready):
                sel = rows[ready]
                decay = np.exp(-DECAY_PER_H * step_s[ready] / 3600.0)
                confirmed[ready] = _not_washout(
                    t.excess[sel], t.var[sel], n[ready], decay, settled[ready]
                )
            confirmed |= t.held_h[rows] >= SUSTAINED_H
            t.n[rows[confirmed]] = 0
            out[np.flatnonzero(firing)[confirmed]] = True
        t.recent[idx] = _shifted(t.recent[idx], excess)
        t.recent_var[idx] = _shifted(t.recent_var[idx], var)
        return out


def _shifted(rows: np.ndarray, latest: np.ndarray) -> np.ndarray:
    """*rows* (a copy) moved one place to the left, with *latest* as the last column."""
    rows[:, :-1] = rows[:, 1:]
    rows[:, -1] = latest
    return rows


def _not_washout(
    r: np.ndarray, v: np.ndarray, n: np.ndarray, decay: np.ndarray, settled: np.ndarray
) -> np.ndarray:
    """Rows whose excess is a step (background, perhaps one partial reading, then one level)
    over the readings before and during the hold, and whose held readings no washout decay
    from an early stop explains nearly as well. A *settled* row's step may have begun before
    the first of those readings."""
    k = np.arange(r.shape[1])
    end = BEFORE + n
    used = (k[None, :] < end[:, None]) & np.isfinite(r)
    w = np.where(used, 1.0 / v, 0.0)
    r = np.where(used, r, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        best = np.full(len(r), np.inf)
        for onset in range(0, BEFORE + 1):  # else at least one background reading first
            if onset < 2 and not np.count_nonzero(settled):
                continue
            on = used & (k[None, :] >= onset)
            off = used & (k[None, :] < onset - 1)  # the reading before the onset may be partial
            won = np.where(on, w, 0.0)
            level = (won * r).sum(axis=1) / won.sum(axis=1)
            sse = (won * (r - level[:, None]) ** 2).sum(axis=1) + (
                np.where(off, w, 0.0) * r**2
            ).sum(axis=1)
            dof = np.maximum(on.sum(axis=1) + off.sum(axis=1) - 1, 1)
            allowed = (level >= LEVEL_MIN) & (settled if onset < 2 else True)
            best = np.fmin(best, np.where(allowed, sse / dof, np.inf))
        step = best <= FLAT_CHI2
        # washout: rain until a stop at p (early in the hold), then a decay from it
        held = used & (k[None, :] >= BEFORE)
        worst = np.full(len(r), np.inf)
        for p in range(BEFORE, BEFORE + LAST_STOP + 1):
            after = held & (k[None, :] >= p)
            possible = end - p >= MIN_AFTER_PEAK
            shape = np.where(after, decay[:, None] ** np.maximum(k[None, :] - p, 0), 0.0)
            wa = np.where(after, w, 0.0)
            scale = (wa * r * shape).sum(axis=1) / (wa * shape * shape).sum(axis=1)
            sse_decay = (wa * (r - scale[:, None] * shape) ** 2).sum(axis=1)
            mean = (wa * r).sum(axis=1) / wa.sum(axis=1)
            sse_flat = (wa * (r - mean[:, None]) ** 2).sum(axis=1)
            worst = np.where(possible, np.fmin(worst, sse_decay - sse_flat), worst)
    return step & (worst >= DECAY_EVIDENCE)
