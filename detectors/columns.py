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
    """A table of per-station arrays (attribute access by name).

    Each array is an instance attribute of its own, found by Python's ordinary lookup: the
    engine reads some 70 of them a step, and a ``__getattr__`` per read cost more than the
    arithmetic of a small network.
    """

    def __init__(self, spec: dict[str, Column]):
        clash = set(spec) & set(dir(Columns))
        if clash:
            raise ValueError(f"column names {sorted(clash)} would hide the table's own")
        object.__setattr__(self, "_spec", spec)
        for name, col in spec.items():
            object.__setattr__(self, name, _new(col, 0))

    def __getattr__(self, name: str) -> np.ndarray:  # only for names that are not columns
        raise AttributeError(name)

    def __setattr__(self, name: str, value: np.ndarray) -> None:
        if name not in self._spec:
            raise AttributeError(f"no column {name!r}")
        self.__dict__[name][...] = value

    @property
    def _arrays(self) -> dict[str, np.ndarray]:
        return {name: self.__dict__[name] for name in self._spec}

    def __len__(self) -> int:
        return len(self.__dict__[next(iter(self._spec))]) if self._spec else 0

    def grow(self, n: int) -> None:
        """Make room for *n* stations; new ones get each column's fill value."""
        old = len(self)
        if n <= old:
            return
        for name, col in self._spec.items():
            fresh = _new(col, n)
            fresh[:old] = self.__dict__[name]
            object.__setattr__(self, name, fresh)

    def reset(self, rows: np.ndarray) -> None:
        """Give *rows* their fill values again (a station starting over)."""
        for name, col in self._spec.items():
            self.__dict__[name][rows] = col.fill

    def dump(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.{name}": array for name, array in self._arrays.items()}

    def load(self, prefix: str, arrays: dict[str, np.ndarray]) -> None:
        for name, col in self._spec.items():
            key = f"{prefix}.{name}"
            if key in arrays:
                loaded = arrays[key].astype(col.dtype, copy=True)
            else:  # a column added since the snapshot: new stations' value
                loaded = _new(col, len(self))
            object.__setattr__(self, name, loaded)


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
