"""Rain washout: the excess a shower adds to a station's background, from its gauge or its
neighbours' gauges.

Washout of radon progeny is the largest natural disturbance (up to a doubling, DOMAIN.md). Its
deposition goes with the square root of the rain rate (Bottardi et al. 2020) and, once rain
stops, the excess decays with ²¹⁴Pb/²¹⁴Bi: an apparent half-life of 30–45 min; the first shower
after a dry spell gives the highest peak. The model is :mod:`radmon.washout` with the nominal
half-life; each station learns its own gain by least squares from rainy readings, starting from
the one measured shower in DOMAIN.md (14 mm in 15 min: 106 → 196 nSv/h). A station without a
gauge uses the inverse-distance rain of the gauges within ``neighbour_km`` (each gauge's latest
rate, whenever it came), with a larger uncertainty, and a wider spread while any gauge in its
area has seen rain, unless one of them stands so close that a shower over the station would be
over it too.
"""

from __future__ import annotations

import math

import numpy as np

from detectors.columns import Column, Columns
from radmon.washout import WASHOUT_GAIN, washout_step

HALF_LIFE_H = 37.5 / 60.0  # middle of the 30–45 min apparent half-life
DECAY_PER_H = math.log(2.0) / HALF_LIFE_H
RAIN_THRESHOLD_MM_H = 0.1  # below this a gauge shows nothing
PRIOR_GAIN = 1.0  # the reference shower's response (radmon.washout)
PRIOR_WEIGHT = 0.5  # the prior counts as this much squared unit response
# Relative uncertainty of the predicted excess: from the station's own gauge, and from the
# neighbours' (a cell can miss the gauges or the station).
GAUGE_UNCERTAINTY = 0.5
NEIGHBOUR_UNCERTAINTY = 1.0
# A station without a gauge, while a gauge within twice the neighbour radius saw rain in the
# last AFTER_RAIN_H hours, may be under a shower none of them sees: light rain alone gives
# +5–20 % (square-root law), so its spread widens by this much of the background.
UNSEEN_RAIN_SPREAD = 0.15
# ... unless a current gauge stands this close: a shower over the station is over it too
# (convective cells are several km wide), so its rain is seen, not unseen.
COVERED_KM = 5.0
# A gauge's latest rate stands for the rain around it for this many of its intervals, so
# stations that report a little before or after it still get it.
CURRENT_INTERVALS = 1.5
# Rain stopped this long ago still leaves washout (gone in 2–3 h, DOMAIN.md).
AFTER_RAIN_H = 3.0
# Below this predicted excess (relative), a reading counts as dry for learning and for tests.
DRY_EXCESS = 0.005
# A gap longer than this in a station's readings restarts its washout state.
MAX_GAP_H = 6.0


class Washout:
    """Each station's modelled washout excess and its learnt gain."""

    def __init__(self) -> None:
        self.table = Columns(
            {
                "unit": Column(np.float64, 0.0),  # relative excess with gain 1
                "reservoir": Column(np.float64, 1.0),  # progeny left in the air (0..1)
                "uu": Column(np.float64, PRIOR_WEIGHT),  # Σ u², for the least-squares gain
                "ur": Column(np.float64, PRIOR_WEIGHT * PRIOR_GAIN),  # Σ u·r
                "gauge_rate": Column(np.float64, np.nan),  # its latest rain rate (mm/h)
                "gauge_at": Column(np.float64, np.nan),  # epoch s of that rate (NaN: no gauge)
                "gauge_span": Column(np.float64, 0.0),  # s either side of it that it stands for
                "covered": Column(np.bool_, False),  # a current gauge within COVERED_KM
                "rain_h": Column(np.float64, np.inf),  # hours since rain (own or estimated)
                "area_rain_h": Column(
                    np.float64, np.inf
                ),  # hours since a gauge in the area saw rain
            }
        )
        self.weights = np.zeros((0, 0))
        self.area = np.zeros((0, 0), dtype=bool)
        # for the stations reporting without a gauge reading last time and the gauges current
        # then (_total_key): their weights and areas (rows: stations, columns: gauges), and
        # each row's total weight
        self._total_key = b""
        self._total = np.zeros(0)
        self._no_rain = np.zeros(0)  # the rate without rain: 0, or NaN with no gauge near
        self._covered = np.zeros(0, dtype=bool)  # a current gauge within COVERED_KM
        self._pair_weights = np.zeros((0, 0))
        self._pair_area = np.zeros((0, 0), dtype=bool)
        self._linked: np.ndarray | None = None  # weights > 0, when asked for
        self._close: np.ndarray | None = None  # stations within COVERED_KM, when asked for

    def grow(self, n: int) -> None:
        self.table.grow(n)
        old = self.weights
        if old.shape[0] < n:
            self.weights = np.zeros((n, n))
            self.weights[: old.shape[0], : old.shape[1]] = old
            area = self.area
            self.area = np.zeros((n, n), dtype=bool)
            self.area[: area.shape[0], : area.shape[1]] = area
            self._total_key = b""
            self._linked = None
            self._close = None

    def set_neighbours(self, weights: np.ndarray, area: np.ndarray) -> None:
        """Inverse-distance weights between stations (0 beyond the neighbour radius), and which
        stations share an area (twice the radius, as 0/1)."""
        self.weights, self.area = weights, area
        self._total_key = b""
        self._linked = None
        self._close = None

    def rain(
        self, t: np.ndarray, idx: np.ndarray, precip: np.ndarray, interval_s: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Rain rate at each reporting station, whether it was measured there, whether a
        gauge in its area sees rain now, and whether the station is covered (a current gauge
        within ``COVERED_KM``: a shower over the station would be over it too).

        Stations without a gauge reading get the weighted rain of the gauges whose latest rate
        is current (NaN when none is near). A gauge's rate stands for ``CURRENT_INTERVALS`` of
        its intervals either side of its time, whichever step brought it: stations need not
        report at the same times, and in a backlog delivered station by station a gauge that
        is hours ahead says nothing about the rain of a station behind. *t* is each reading's
        time; a gauge current at any of them counts for all (they share one step).
        """
        tab = self.table
        measured = np.isfinite(precip)
        rate = np.where(measured, np.maximum(precip, 0.0), np.nan)
        area_wet = measured & (rate >= RAIN_THRESHOLD_MM_H)
        covered = np.zeros(len(idx), dtype=bool)
        if np.count_nonzero(measured):
            gauges = idx[measured]
            tab.gauge_rate[gauges] = rate[measured]
            tab.gauge_at[gauges] = t[measured]
            tab.gauge_span[gauges] = CURRENT_INTERVALS * interval_s[measured]
        ungauged = ~measured
        if not np.count_nonzero(ungauged):
            return rate, measured, area_wet, covered
        with np.errstate(invalid="ignore"):  # NaN: a station that never measured rain
            at, span = tab.gauge_at, tab.gauge_span
            gauges = np.flatnonzero((at >= t.min() - span) & (at <= t.max() + span))
        if not len(gauges):
            return rate, measured, area_wet, covered
        unmeasured = idx[ungauged]
        key = unmeasured.tobytes() + gauges.tobytes()
        if key != self._total_key:  # the same stations report step after step
            # take, row then column: the same values as np.ix_, 3-5 times faster at 1,000
            # stations (the set of current gauges changes as probes drop out and return)
            self._pair_weights = self.weights.take(unmeasured, axis=0).take(gauges, axis=1)
            self._covered = (self._pair_weights >= _weight(COVERED_KM)).any(axis=1)
            self._pair_area = self.area.take(unmeasured, axis=0).take(gauges, axis=1)
            self._total = self._pair_weights.sum(axis=1)
            self._no_rain = np.where(self._total > 0, 0.0, np.nan)
            self._total_key = key
        covered[ungauged] = self._covered
        gauge_rate = tab.gauge_rate[gauges]
        falling = gauge_rate > 0.0
        if np.count_nonzero(falling):  # most of the time it rains nowhere
            # compress keeps the rows C-ordered, as w was when gathered from the weights
            # (a mask would give a Fortran-ordered w, and the product other roundings)
            w = self._pair_weights.compress(falling, axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                rate[ungauged] = self._no_rain + (w @ gauge_rate[falling]) / self._total
            wet = gauge_rate >= RAIN_THRESHOLD_MM_H
            area_wet[ungauged] = self._pair_area.compress(wet, axis=1).any(axis=1)
        else:
            rate[ungauged] = self._no_rain
        return rate, measured, area_wet, covered

    def advance(
        self,
        idx: np.ndarray,
        rate: np.ndarray,
        measured: np.ndarray,
        area_wet: np.ndarray,
        covered: np.ndarray,
        dt_h: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance each station's washout by *dt_h* of rain at *rate* (*measured*, *area_wet*
        and *covered* as :meth:`rain` gave them); returns the predicted relative excess, its
        relative uncertainty (both 0 when dry) and whether rain may be acting on the station
        (within AFTER_RAIN_H, measured or not)."""
        t = self.table
        gap = dt_h > MAX_GAP_H
        if np.count_nonzero(gap):
            dt_h = np.where(gap, 0.0, dt_h)
        # np.nan_to_num only where it changes something (it costs ~15 µs a call)
        known = rate if np.isfinite(rate).all() else np.nan_to_num(rate)
        restart = dt_h <= 0
        unit, reservoir = t.unit[idx], t.reservoir[idx]
        if np.count_nonzero(restart):  # a first reading, or one after a long gap
            unit, reservoir = np.where(restart, 0.0, unit), np.where(restart, 1.0, reservoir)
        unit, reservoir = washout_step(
            unit,
            reservoir,
            known,
            dt_h,
            WASHOUT_GAIN,
            DECAY_PER_H,
        )
        t.reservoir[idx] = reservoir
        t.unit[idx] = unit
        wet = known >= RAIN_THRESHOLD_MM_H
        rain_h = np.where(wet, 0.0, t.rain_h[idx] + dt_h)
        area_rain_h = np.where(area_wet, 0.0, t.area_rain_h[idx] + dt_h)
        t.rain_h[idx] = rain_h
        t.area_rain_h[idx] = area_rain_h
        t.covered[idx] = covered
        gain = t.ur[idx] / t.uu[idx]
        excess = gain * unit
        uncertainty = excess * np.where(measured, GAUGE_UNCERTAINTY, NEIGHBOUR_UNCERTAINTY)
        unseen = ~measured & ~covered & (area_rain_h < AFTER_RAIN_H)
        uncertainty = np.where(unseen, np.hypot(uncertainty, UNSEEN_RAIN_SPREAD), uncertainty)
        return excess, uncertainty, (rain_h < AFTER_RAIN_H) | unseen

    def wet(self) -> np.ndarray:
        """Every station: whether rain may be acting on it (as :meth:`advance` last judged)."""
        t = self.table
        gauged = np.isfinite(t.gauge_at)
        return (t.rain_h < AFTER_RAIN_H) | (~gauged & ~t.covered & (t.area_rain_h < AFTER_RAIN_H))

    def area_dry_h(self, idx: np.ndarray) -> np.ndarray:
        """Hours since a gauge in each station's area last saw rain (as :meth:`advance` left
        it); 0 for a station with no gauge in its area, whose dry spells nothing can tell."""
        tab = self.table
        has_gauge = (self.area[idx] & np.isfinite(tab.gauge_at)[None, : self.area.shape[1]]).any(
            axis=1
        )
        return np.where(has_gauge, tab.area_rain_h[idx], 0.0)

    def neighbours_among(self, rows: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        """For stations *rows*: how many of their neighbours are *chosen* (a mask of all)."""
        return (self.linked()[rows] & chosen).sum(axis=1)

    def linked(self) -> np.ndarray:
        """Which stations are each other's neighbours (a weight above 0)."""
        if self._linked is None or self._linked.shape != self.weights.shape:
            self._linked = self.weights > 0
        return self._linked

    def gauged(self, idx: np.ndarray) -> np.ndarray:
        """Whether each station has ever reported a rain rate: it has a gauge."""
        return np.isfinite(self.table.gauge_at[idx])

    def rain_known(self, idx: np.ndarray, covered: np.ndarray, since: np.ndarray) -> np.ndarray:
        """Whether each station's rain is known: its own gauge, or (where *covered*) a gauge
        within ``COVERED_KM`` that has a rate for time *since* (each station's, epoch s) or
        later while no gauge in its area has seen rain for ``AFTER_RAIN_H``. A rate from
        before *since* may predate a shower that began since."""
        tab = self.table
        known = self.gauged(idx)
        ask = covered & ~known & (tab.area_rain_h[idx] >= AFTER_RAIN_H)
        if not np.count_nonzero(ask):
            return known
        rows = np.flatnonzero(ask)
        if self._close is None or len(self._close) != len(self.weights):
            close = self.weights >= _weight(COVERED_KM)
            width = max(1, int(close.sum(axis=1).max(initial=0)))
            self._close = np.full((len(close), width), -1, dtype=np.int64)  # -1: none
            for i, js in enumerate(close):
                near = np.flatnonzero(js)
                self._close[i, : len(near)] = near
        close = self._close[idx[rows]]
        with np.errstate(invalid="ignore"):  # NaN: a station that never measured rain
            reported = tab.gauge_at[close] >= since[rows, None]
        known[rows] = ((close >= 0) & reported).any(axis=1)
        return known

    def learn(self, idx: np.ndarray, unit: np.ndarray, residual_rel: np.ndarray) -> None:
        """Refine the gains from readings with a measured rain response (no alarm open)."""
        t = self.table
        t.uu[idx] += unit * unit
        t.ur[idx] += unit * residual_rel


def distances_km(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Great-circle distances between stations (NaN for unknown positions)."""
    lat_r, lon_r = np.radians(lat), np.radians(lon)
    dlat = lat_r[:, None] - lat_r[None, :]
    dlon = lon_r[:, None] - lon_r[None, :]
    a = (
        np.sin(dlat / 2) ** 2
        + np.cos(lat_r[:, None]) * np.cos(lat_r[None, :]) * np.sin(dlon / 2) ** 2
    )
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def neighbour_weights(km: np.ndarray, radius_km: float) -> np.ndarray:
    """Inverse-square-distance weights within *radius_km* (0 on the diagonal and for unknown
    positions)."""
    with np.errstate(invalid="ignore"):
        weights = np.where(km <= radius_km, _weight(km), 0.0)
    np.fill_diagonal(weights, 0.0)
    return weights


def _weight(km: np.ndarray | float) -> np.ndarray | float:
    """The inverse-square weight of a gauge *km* away (1 km softens the nearest)."""
    return 1.0 / (km**2 + 1.0)
