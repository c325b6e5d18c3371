"""Per-station state as named numpy arrays that grow together and snapshot as one unit.

Every detector keeps its state here rather than in Python objects per station, so one step of
the engine is a handful of array operations whatever the number of stations.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Column:
    """One per-station array: its dtype, the value of a new station, and an optional width."""

    dtype: Any
    fill: Any
    width: int = 0  # 0: one value per station; k: k values per station


class Columns:
    """A table of per-station arrays (attribute access by name)."""

    def __init__(self, spec: dict[str, Column]):
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_arrays", {name: _new(col, 0) for name, col in spec.items()})

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self._arrays[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: np.ndarray) -> None:
        if name not in self._spec:
            raise AttributeError(f"no column {name!r}")
        self._arrays[name][...] = value

    def __len__(self) -> int:
        return len(next(iter(self._arrays.values()))) if self._arrays else 0

    def grow(self, n: int) -> None:
        """Make room for *n* stations; new ones get each column's fill value."""
        old = len(self)
        if n <= old:
            return
        for name, col in self._spec.items():
            fresh = _new(col, n)
            fresh[:old] = self._arrays[name]
            self._arrays[name] = fresh

    def reset(self, rows: np.ndarray) -> None:
        """Give *rows* their fill values again (a station starting over)."""
        for name, col in self._spec.items():
            self._arrays[name][rows] = col.fill

    def dump(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.{name}": array for name, array in self._arrays.items()}

    def load(self, prefix: str, arrays: dict[str, np.ndarray]) -> None:
        for name, col in self._spec.items():
            key = f"{prefix}.{name}"
            if key in arrays:
                self._arrays[name] = arrays[key].astype(col.dtype, copy=True)
            else:  # a column added since the snapshot: new stations' value
                self._arrays[name] = _new(col, len(self))


def _new(col: Column, n: int) -> np.ndarray:
    shape = (n, col.width) if col.width else (n,)
    return np.full(shape, col.fill, dtype=col.dtype)


def pack(arrays: dict[str, np.ndarray]) -> bytes:
    """Arrays as one compressed .npz blob (no pickles: a snapshot is data, not code)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def unpack(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
