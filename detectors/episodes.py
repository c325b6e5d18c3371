"""Alarm episodes: at most one open per station and slot, with hysteresis.

A test firing opens an episode; while the station stays abnormal the episode follows its peak
and highest severity; it closes once the station has been normal for ``clear_after_s``. Its
identity is (station, kind, opened_at), so replaying the same readings after a restart yields
the same episodes and the store's upsert keeps one row each.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from detectors.columns import Column, Columns
from radmon.models import Alarm, AlarmState, Category, Severity

SEVERITIES = list(Severity)
# An open episode is re-emitted when its peak grows by this fraction (or its severity rises).
PEAK_STEP = 0.05
NO_TIME = np.iinfo(np.int64).min


@dataclass(frozen=True)
class Slot:
    """A place for one open episode per station: the level alarm, the statistical anomaly,
    and each technical condition."""

    name: str
    category: Category


class Episodes:
    """The open episodes of every station, slot by slot; emits :class:`Alarm` changes."""

    def __init__(self, slots: list[Slot], clear_after_s: float, station_id: Callable[[int], str]):
        self.slots = slots
        self.clear_after_s = clear_after_s
        self._station_id = station_id
        width = len(slots)
        self.table = Columns(
            {
                "open": Column(np.bool_, False, width),
                "opened_at": Column(np.int64, NO_TIME, width),
                "last_bad": Column(np.int64, NO_TIME, width),
                "peak": Column(np.float64, np.nan, width),
                "baseline": Column(np.float64, np.nan, width),
                "severity": Column(np.int8, 0, width),
                "emitted_peak": Column(np.float64, np.nan, width),
            }
        )
        self.kinds: dict[tuple[int, int], str] = {}
        self.details: dict[tuple[int, int], dict[str, Any]] = {}
        self.changes: list[Alarm] = []
        self._open_count = [0] * width  # open episodes per slot (the same as table.open)

    def grow(self, n: int) -> None:
        self.table.grow(n)

    def is_open(self, slot: int) -> np.ndarray:
        return self.table.open[:, slot]

    def any_open(self, slot: int) -> bool:
        """Whether any station has an episode of *slot* open (without scanning them)."""
        return self._open_count[slot] > 0

    def update(
        self,
        slot: int,
        t: int | np.ndarray,
        idx: np.ndarray,
        bad: np.ndarray,
        value: np.ndarray,
        baseline: np.ndarray,
        severity: np.ndarray,
        describe: Callable[[np.ndarray], list[tuple[str, dict[str, Any]]]],
    ) -> None:
        """Judge stations *idx* at time *t* (one for all, or each its own) for *slot*.

        *bad*: abnormal now; *value*: the dose rate to track as peak; *severity*: rank when bad;
        *describe(rows)* gives (kind, details) for the rows (positions in *idx*) that open or
        update an episode, called only for those.
        """
        tab = self.table
        if not self._open_count[slot] and not np.count_nonzero(bad):
            return  # the usual case: nothing abnormal, nothing open to follow or close
        t = np.broadcast_to(t, idx.shape)
        was_open = tab.open[idx, slot]
        opening = bad & ~was_open
        going_on = bad & was_open
        if np.count_nonzero(opening):
            rows = np.flatnonzero(opening)
            st = idx[rows]
            self._open_count[slot] += len(st)
            tab.open[st, slot] = True
            tab.opened_at[st, slot] = t[rows]
            tab.last_bad[st, slot] = t[rows]
            tab.peak[st, slot] = value[rows]
            tab.baseline[st, slot] = baseline[rows]
            tab.severity[st, slot] = severity[rows]
            for i, at, (kind, details) in zip(st, t[rows], describe(rows), strict=True):
                self.kinds[(int(i), slot)] = kind
                self.details[(int(i), slot)] = {"opened": details, "latest": details}
                self._emit(int(i), slot, int(at))
        if np.count_nonzero(going_on):
            rows = np.flatnonzero(going_on)
            st = idx[rows]
            # a late reading (older than the station's latest) never moves the last bad back
            tab.last_bad[st, slot] = np.maximum(tab.last_bad[st, slot], t[rows])
            tab.peak[st, slot] = np.fmax(tab.peak[st, slot], value[rows])
            rises = severity[rows] > tab.severity[st, slot]
            tab.severity[st, slot] = np.maximum(tab.severity[st, slot], severity[rows])
            grown = tab.peak[st, slot] > tab.emitted_peak[st, slot] * (1.0 + PEAK_STEP)
            notable = rows[rises | grown]
            if len(notable):
                described = describe(notable)
                for i, at, (_, details) in zip(idx[notable], t[notable], described, strict=True):
                    self.details[(int(i), slot)]["latest"] = details
                    self._emit(int(i), slot, int(at))
        calm = ~bad & was_open
        if np.count_nonzero(calm):
            st, at = idx[calm], t[calm]
            done = at - tab.last_bad[st, slot] >= self.clear_after_s
            for i, when in zip(st[done], at[done], strict=True):
                self._close(int(i), slot, int(when))

    def kind(self, i: int, slot: int) -> str | None:
        return self.kinds.get((i, slot))

    def reclassify(self, i: int, slot: int, kind: str, t: int, details: dict[str, Any]) -> None:
        """Give an open episode a new kind (a "transient" that stays is a step): the old kind's
        episode is closed where it began, the new one goes on from the same opening."""
        opened_at = int(self.table.opened_at[i, slot])
        self.table.last_bad[i, slot], last_bad = opened_at, int(self.table.last_bad[i, slot])
        self._emit(i, slot, t, cleared_at=t)
        self.table.last_bad[i, slot] = last_bad
        self.kinds[(i, slot)] = kind
        self.details[(i, slot)]["latest"] = details
        self._emit(i, slot, t)

    def _emit(self, i: int, slot: int, t: int, cleared_at: int | None = None) -> None:
        tab = self.table
        tab.emitted_peak[i, slot] = tab.peak[i, slot]
        details = dict(self.details[(i, slot)])
        details["last_abnormal_at"] = iso(int(tab.last_bad[i, slot]))
        peak = float(tab.peak[i, slot])
        baseline = float(tab.baseline[i, slot])
        self.changes.append(
            Alarm.model_construct(
                id=None,
                station_id=self._station_id(i),
                kind=self.kinds[(i, slot)],
                category=self.slots[slot].category,
                severity=SEVERITIES[int(tab.severity[i, slot])],
                state=AlarmState.CLEARED_UNACK
                if cleared_at is not None
                else AlarmState.ACTIVE_UNACK,
                opened_at=_dt(int(tab.opened_at[i, slot])),
                updated_at=_dt(t),
                cleared_at=_dt(cleared_at) if cleared_at is not None else None,
                peak_nsv_h=peak if np.isfinite(peak) else None,
                baseline_nsv_h=round(baseline, 3) if np.isfinite(baseline) else None,
                acked_by=None,
                acked_at=None,
                details=details,
            )
        )

    def _close(self, i: int, slot: int, t: int) -> None:
        self._emit(i, slot, t, cleared_at=t)
        tab = self.table
        tab.open[i, slot] = False
        self._open_count[slot] -= 1
        del self.kinds[(i, slot)]
        del self.details[(i, slot)]

    def emit_grown_peaks(self, t: int) -> None:
        """Emit every open episode whose peak has grown since it was last emitted, by less
        than PEAK_STEP too: at the end of a file, so its table carries the true peaks, and
        live at every tick."""
        tab = self.table
        for i, slot in zip(*np.nonzero(tab.open & (tab.peak > tab.emitted_peak)), strict=True):
            self._emit(int(i), int(slot), t)

    def drain(self) -> list[Alarm]:
        changes, self.changes = self.changes, []
        return changes

    def dump(self) -> tuple[dict[str, np.ndarray], str]:
        meta = json.dumps(
            [[i, s, self.kinds[(i, s)], self.details[(i, s)]] for i, s in sorted(self.kinds)]
        )
        return self.table.dump("episodes"), meta

    def load(self, arrays: dict[str, np.ndarray], meta: str) -> None:
        self.table.load("episodes", arrays)
        self._open_count = [int(n) for n in self.table.open.sum(axis=0)]
        self.kinds, self.details = {}, {}
        for i, s, kind, details in json.loads(meta):
            self.kinds[(i, s)] = kind
            self.details[(i, s)] = details


def _dt(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def iso(seconds: int) -> str:
    return _dt(seconds).isoformat().replace("+00:00", "Z")
