"""Injected events and probe faults, with their ground truth.

Events are planned a window at a time from their own random streams, so switching events off
leaves the weather and the network unchanged. No two events (faults included) touch the same
station within ``GAP_H`` hours of each other, so the truth is unambiguous for an evaluation.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial

import numpy as np

from ingest.simulator.config import SimulationConfig
from ingest.simulator.network import Network
from ingest.simulator.province import Province

log = logging.getLogger(__name__)

# Relative steps of a source left near a station: +10 %, +20 %, +50 %, ×2 (planning choices).
SOURCE_STEPS = (0.1, 0.2, 0.5, 1.0)
SOURCE_HOURS = (6.0, 120.0)
SOURCE_OPEN_ENDED_SHARE = 0.3
SOURCE_OFFSET_M = (5.0, 50.0)
# A vehicle carrying a source past the probe: one interval at 2–20× the background on top.
PASSING_RELATIVE = (2.0, 20.0)
# A regional plume: a Gaussian puff advected over hours (a release elsewhere, or a far one).
PLUME_SPEED_KMH = (10.0, 30.0)
PLUME_HOURS = (3.0, 8.0)
PLUME_SIGMA0_KM = (3.0, 6.0)
PLUME_GROWTH_KM_H = (1.5, 3.0)
PLUME_PEAK_RELATIVE = (0.3, 1.5)  # at the station it is aimed at
PLUME_AFFECTED_RELATIVE = 0.10  # a station counts as affected from +10 % of its background
PLUME_EDGE_RELATIVE = 0.02  # the event's start and end: first/last reading above +2 %
PLUME_MIN_STATIONS = 2
# Quiet time around each event on a station, so that episodes do not merge.
GAP_H = 3.0
EARLIEST_START_H = 24.0  # leave the first day of a run as history for the baselines
ATTEMPTS = 50
OPEN_END = sys.maxsize


class EventKind(StrEnum):
    """What was injected: three radiological kinds and two probe faults."""

    SOURCE_NEAR_STATION = "source_near_station"
    PASSING_SOURCE = "passing_source"
    REGIONAL_PLUME = "regional_plume"
    STUCK = "stuck"
    DROPOUT = "dropout"

    @property
    def radiological(self) -> bool:
        return self not in (EventKind.STUCK, EventKind.DROPOUT)


@dataclass(frozen=True)
class InjectedEvent:
    """Ground truth of one injected event.

    ``start`` and ``end`` are the times of the first and last affected readings (inclusive);
    ``end`` is None when it lasts to the end of the run. ``magnitude`` is the added dose rate
    relative to the station's background (0.2 = +20 %; for a plume, the largest over its
    stations) and ``added_nsv_h`` the added dose rate (its peak, for a plume).
    """

    event_id: str
    kind: EventKind
    start: datetime
    end: datetime | None
    station_ids: tuple[str, ...]
    magnitude: float | None = None
    added_nsv_h: float | None = None
    lat: float | None = None
    lon: float | None = None
    detail: str = ""


@dataclass
class _Effect:
    """An event in step indices: what it adds (or does) to which stations, from k0 to k1."""

    kind: EventKind
    k0: int
    k1: int
    stations: np.ndarray
    added: np.ndarray | None = None  # (m,) constant, or (k1 - k0 + 1, m) per step


_Made = tuple[_Effect, InjectedEvent] | None


class EventPlanner:
    """Plans events and faults window by window and applies them step by step."""

    def __init__(
        self,
        net: Network,
        province: Province,
        config: SimulationConfig,
        rng_events: np.random.Generator,
        rng_faults: np.random.Generator,
        window_steps: int,
        open_ended: bool,
    ):
        self.net, self.province, self.config = net, province, config
        self._rng_events, self._rng_faults = rng_events, rng_faults
        self._dt = config.interval_s
        self._window = max(1, window_steps)
        self._open_ended = open_ended
        self._gap = math.ceil(GAP_H * 3600 / self._dt)
        self._planned_to = 0
        self._busy: list[list[tuple[int, int]]] = [[] for _ in range(len(net))]
        self._pending: list[_Effect] = []
        self._active: list[_Effect] = []
        self.events: list[InjectedEvent] = []
        self.unplaced: dict[EventKind, int] = {}

    # -- planning ---------------------------------------------------------------------------

    def ensure(self, k: int) -> None:
        """Plan every window up to step *k*."""
        while self._planned_to < k:
            first = self._planned_to + 1
            self._planned_to += self._window
            self._plan_window(first, self._planned_to)

    def _steps(self, hours: float) -> int:
        return max(1, round(hours * 3600 / self._dt))

    def _free(self, i: int, k0: int, k1: int) -> bool:
        return all(k1 + self._gap < a or k0 - self._gap > b for a, b in self._busy[i])

    def _time(self, k: int) -> datetime:
        return self.config.start + timedelta(seconds=k * self._dt)

    def _plan_window(self, first: int, last: int) -> None:
        earliest = first
        if first == 1:
            earliest = 1 + min(self._steps(EARLIEST_START_H), self._window // 4)
        cfg = self.config
        planned: list[tuple[_Effect, InjectedEvent]] = []
        if cfg.events:
            for _ in range(cfg.n_regional_plume):
                planned.append(self._place(EventKind.REGIONAL_PLUME, self._plume, earliest, last))
            for _ in range(cfg.n_source_near_station):
                planned.append(
                    self._place(EventKind.SOURCE_NEAR_STATION, self._source, earliest, last)
                )
            for _ in range(cfg.n_passing_source):
                planned.append(self._place(EventKind.PASSING_SOURCE, self._passing, earliest, last))
        if cfg.faults:
            station_days = len(self.net) * (last - first + 1) * self._dt / 86400
            for kind, rate, hours in (
                (EventKind.STUCK, cfg.stuck_per_station_day, cfg.stuck_hours),
                (EventKind.DROPOUT, cfg.dropout_per_station_day, cfg.dropout_hours),
            ):
                for _ in range(int(self._rng_faults.poisson(rate * station_days))):
                    make = partial(self._fault, kind, hours)
                    planned.append(self._place(kind, make, earliest, last))
        placed = [p for p in planned if p is not None]
        placed.sort(key=lambda p: (p[0].k0, p[1].kind, p[1].station_ids))
        for effect, event in placed:
            number = len(self.events) + 1
            self.events.append(_with_id(event, f"E{number:04d}"))
            self._pending.append(effect)
        self._pending.sort(key=lambda e: e.k0)

    def _place(
        self, kind: EventKind, make: Callable[[int, int], _Made], earliest: int, last: int
    ) -> _Made:
        for _ in range(ATTEMPTS):
            made = make(earliest, last)
            if made is None:
                continue
            effect = made[0]
            if all(self._free(int(i), effect.k0, effect.k1) for i in effect.stations):
                for i in effect.stations:
                    self._busy[int(i)].append((effect.k0, effect.k1))
                return made
        self.unplaced[kind] = self.unplaced.get(kind, 0) + 1
        log.warning("no room for a %s event in the simulated window; left out", kind)
        return None

    def _source(self, earliest: int, last: int) -> _Made:
        rng, net = self._rng_events, self.net
        i = int(rng.integers(len(net)))
        step = float(rng.choice(SOURCE_STEPS))
        open_ended = self._open_ended and rng.uniform() < SOURCE_OPEN_ENDED_SHARE
        # a short window (a live demo's day) caps the duration rather than refusing the source
        length = min(self._steps(rng.uniform(*SOURCE_HOURS)), last - earliest + 1)
        if open_ended:
            length = self._steps(12.0)  # at least half a day before the run ends
        if length < self._steps(SOURCE_HOURS[0]) or last - length < earliest:
            return None
        k0 = int(rng.integers(earliest, last - length + 1))
        k1 = OPEN_END if open_ended else k0 + length - 1
        added = step * net.background_nsv_h[i]
        distance = rng.uniform(*SOURCE_OFFSET_M) / 1000
        bearing = rng.uniform(0, 2 * math.pi)
        lat, lon = self.province.to_latlon(
            net.x_km[i] + distance * math.sin(bearing), net.y_km[i] + distance * math.cos(bearing)
        )
        effect = _Effect(EventKind.SOURCE_NEAR_STATION, k0, k1, np.array([i]), np.array([added]))
        event = InjectedEvent(
            "",
            EventKind.SOURCE_NEAR_STATION,
            self._time(k0),
            None if open_ended else self._time(k1),
            (net.ids[i],),
            step,
            round(float(added), 2),
            round(float(lat), 5),
            round(float(lon), 5),
            f"source {distance * 1000:.0f} m from the probe: +{step:.0%} of background",
        )
        return effect, event

    def _passing(self, earliest: int, last: int) -> _Made:
        rng, net = self._rng_events, self.net
        i = int(rng.integers(len(net)))
        k = int(rng.integers(earliest, last + 1))
        relative = float(np.exp(rng.uniform(*np.log(PASSING_RELATIVE))))
        added = relative * net.background_nsv_h[i]
        effect = _Effect(EventKind.PASSING_SOURCE, k, k, np.array([i]), np.array([added]))
        station = net.stations[i]
        event = InjectedEvent(
            "",
            EventKind.PASSING_SOURCE,
            self._time(k),
            self._time(k),
            (net.ids[i],),
            round(relative, 3),
            round(float(added), 2),
            station.lat,
            station.lon,
            "a vehicle carrying a source past the probe (one interval)",
        )
        return effect, event

    def _plume(self, earliest: int, last: int) -> _Made:
        rng, net = self._rng_events, self.net
        hours = rng.uniform(*PLUME_HOURS)
        half = self._steps(hours / 2)
        if last - half < earliest + half:
            return None
        target = int(rng.integers(len(net)))
        k_mid = int(rng.integers(earliest + half, last - half + 1))
        heading = rng.uniform(0, 2 * math.pi)
        speed = rng.uniform(*PLUME_SPEED_KMH)
        sigma0 = rng.uniform(*PLUME_SIGMA0_KM)
        growth = rng.uniform(*PLUME_GROWTH_KM_H)
        miss = rng.normal(0.0, 2.0)  # km beside the target station
        relative = rng.uniform(*PLUME_PEAK_RELATIVE)
        ux, uy = math.sin(heading), math.cos(heading)
        x0 = net.x_km[target] - ux * speed * hours / 2 + uy * miss
        y0 = net.y_km[target] - uy * speed * hours / 2 - ux * miss
        sigma_mid = sigma0 + growth * hours / 2
        a0 = relative * net.background_nsv_h[target] * (sigma_mid / sigma0) ** 2
        k_first = k_mid - half

        def field(ks: np.ndarray, idx: np.ndarray) -> np.ndarray:
            t_h = (ks - k_first)[:, None] * self._dt / 3600.0
            sigma = sigma0 + growth * t_h
            cx, cy = x0 + ux * speed * t_h, y0 + uy * speed * t_h
            d2 = (net.x_km[idx] - cx) ** 2 + (net.y_km[idx] - cy) ** 2
            return a0 * (sigma0 / sigma) ** 2 * np.exp(-d2 / (2 * sigma**2))

        all_ks = np.arange(k_first, k_mid + half + 1)
        coarse = all_ks[:: max(1, len(all_ks) // 400)]  # choose stations on a coarse time grid
        everyone = np.arange(len(net))
        peak = field(coarse, everyone).max(axis=0) / net.background_nsv_h
        affected = everyone[peak >= PLUME_AFFECTED_RELATIVE]
        if len(affected) < min(PLUME_MIN_STATIONS, len(net)):
            return None
        added = field(all_ks, affected)
        above = (added >= PLUME_EDGE_RELATIVE * net.background_nsv_h[affected]).any(axis=1)
        rows = np.flatnonzero(above)
        added = added[rows[0] : rows[-1] + 1]
        k0, k1 = int(all_ks[rows[0]]), int(all_ks[rows[-1]])
        lat, lon = self.province.to_latlon(x0, y0)
        relative_peak = added.max(axis=0) / net.background_nsv_h[affected]
        effect = _Effect(EventKind.REGIONAL_PLUME, k0, k1, affected, added)
        event = InjectedEvent(
            "",
            EventKind.REGIONAL_PLUME,
            self._time(k0),
            self._time(k1),
            tuple(net.ids[affected]),
            round(float(relative_peak.max()), 3),
            round(float(added.max()), 2),
            round(float(lat), 5),
            round(float(lon), 5),
            f"puff moving toward {math.degrees(heading):.0f}° at {speed:.0f} km/h "
            f"for {hours:.1f} h, over {len(affected)} stations",
        )
        return effect, event

    def _fault(
        self, kind: EventKind, hours: tuple[float, float], earliest: int, last: int
    ) -> _Made:
        rng, net = self._rng_faults, self.net
        i = int(rng.integers(len(net)))
        length = max(2, self._steps(rng.uniform(*hours)))
        if last - length < earliest:
            return None
        k0 = int(rng.integers(earliest, last - length + 2))
        k1 = k0 + length - 1
        detail = "the probe repeats one value" if kind is EventKind.STUCK else "no readings"
        effect = _Effect(kind, k0, k1, np.array([i]))
        event = InjectedEvent(
            "", kind, self._time(k0), self._time(k1), (net.ids[i],), detail=detail
        )
        return effect, event

    # -- applying ----------------------------------------------------------------------------

    def activate(self, k: int) -> None:
        """Move the effects that start by step *k* to the active list; drop finished ones."""
        self.ensure(k)
        while self._pending and self._pending[0].k0 <= k:
            self._active.append(self._pending.pop(0))
        if any(e.k1 < k for e in self._active):
            self._active = [e for e in self._active if e.k1 >= k]
            self._prune_busy(k)

    def _prune_busy(self, k: int) -> None:
        limit = k - self._gap
        self._busy = [[(a, b) for a, b in spans if b >= limit] for spans in self._busy]

    def added_nsv_h(self, k: int, out: np.ndarray) -> None:
        """Add the radiological events' dose rate at step *k* into *out* (one value per station)."""
        for e in self._active:
            if e.kind.radiological and e.k0 <= k and e.added is not None:
                out[e.stations] += e.added if e.added.ndim == 1 else e.added[k - e.k0]

    def faulty(self, k: int, kind: EventKind) -> list[int]:
        """Stations with fault *kind* at step *k*."""
        return [int(e.stations[0]) for e in self._active if e.kind is kind and e.k0 <= k]


def _with_id(event: InjectedEvent, event_id: str) -> InjectedEvent:
    return InjectedEvent(**{**event.__dict__, "event_id": event_id})
