"""``radmon detect`` files (CONTRACTS): a readings CSV in, an alarms CSV out.

Tens of millions of rows must parse in seconds, so columns are parsed whole by pandas; each
distinct time string is parsed once. A bad cell stops the run with the file, line and field.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from detectors.frames import ALARM_COLUMNS
from radmon import times
from radmon.errors import InputError, not_utf8

REQUIRED = ("time", "station_id", "dose_rate_nsv_h")
OPTIONAL = ("precip_mm_h",)
# A time must name its zone: 'Z' or an offset (ARCHITECTURE: no silent 7-hour shift).
_ZONED = re.compile(r"(Z|z|[+-]\d{2}(:?\d{2})?)$")
_ISO_Z = "%Y-%m-%dT%H:%M:%SZ"


def read_readings_csv(path: Path) -> pd.DataFrame:
    """The readings of *path* as time (UTC), station_id, dose_rate_nsv_h, precip_mm_h."""
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns
    except UnicodeDecodeError as exc:
        raise not_utf8(path) from exc
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: cannot read readings: {exc}") from exc
    columns = [c.strip() for c in header]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InputError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
    wanted = [c for c in (*REQUIRED, *OPTIONAL) if c in columns]
    try:
        raw = pd.read_csv(
            path,
            usecols=lambda c: c.strip() in wanted,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            index_col=False,  # a trailing comma on the rows must not make the times an index
            skip_blank_lines=False,  # the row's index is its line - 2, for the messages
        )
    except UnicodeDecodeError as exc:
        raise not_utf8(path) from exc
    except (OSError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read readings: {exc}") from exc
    raw.columns = [c.strip() for c in raw.columns]
    raw = raw[(raw != "").any(axis=1)]  # blank lines, kept above only to count them
    frame = pd.DataFrame(
        {
            "time": _times(path, raw["time"]),
            "station_id": _station_ids(path, raw["station_id"]),
            "dose_rate_nsv_h": _numbers(path, raw["dose_rate_nsv_h"], "dose_rate_nsv_h", False),
        }
    )
    if "precip_mm_h" in raw:
        frame["precip_mm_h"] = _numbers(path, raw["precip_mm_h"], "precip_mm_h", True)
    else:
        frame["precip_mm_h"] = np.nan
    return frame


def _fail(column: pd.Series, path: Path, row: int, field: str, problem: str) -> InputError:
    """The error for the *row*-th value of *column*; its index is its line - 2."""
    return InputError(f"{path}: line {int(column.index[row]) + 2}: {field}: {problem}")


def _times(path: Path, column: pd.Series) -> pd.Series:
    # "...z" is RFC 3339's lower-case Z, which the ISO parser does not take
    codes, uniques = pd.factorize(column.str.strip().str.replace(r"z$", "Z", regex=True))
    zoned = np.fromiter((bool(_ZONED.search(u)) for u in uniques), bool, len(uniques))
    if not zoned.all():
        bad = int(np.flatnonzero(~zoned)[0])
        row = int(np.flatnonzero(codes == bad)[0])
        raise _fail(column, path, row, "time", f"{uniques[bad]!r} has no zone (add Z or an offset)")
    parsed = pd.to_datetime(pd.Series(uniques), format="ISO8601", utc=True, errors="coerce")
    wrong = parsed.isna().to_numpy()
    if wrong.any():
        bad = int(np.flatnonzero(wrong)[0])
        row = int(np.flatnonzero(codes == bad)[0])
        raise _fail(column, path, row, "time", f"{uniques[bad]!r} is not ISO 8601")
    outside = ((parsed < times.EARLIEST) | (parsed >= times.LATEST)).to_numpy()
    if outside.any():  # a mistyped year is not history
        bad = int(np.flatnonzero(outside)[0])
        row = int(np.flatnonzero(codes == bad)[0])
        raise _fail(
            column,
            path,
            row,
            "time",
            f"{uniques[bad]!r} is outside the years {times.EARLIEST.year}-{times.LATEST.year - 1}",
        )
    return pd.Series(pd.DatetimeIndex(parsed)[codes], index=column.index)


def _station_ids(path: Path, column: pd.Series) -> pd.Series:
    ids = column.str.strip()
    empty = (ids == "").to_numpy()
    if empty.any():
        raise _fail(column, path, int(np.flatnonzero(empty)[0]), "station_id", "empty")
    return ids


def _numbers(path: Path, column: pd.Series, field: str, optional: bool) -> np.ndarray:
    text = column.str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(np.float64)
    empty = (text == "").to_numpy()
    bad = np.isnan(values) & ~empty & ~text.str.lower().isin(["nan"]).to_numpy()
    if not optional:
        bad |= empty
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise _fail(column, path, row, field, f"{column.iloc[row]!r} is not a number")
    return values


def write_alarms_csv(alarms: pd.DataFrame, path: Path) -> None:
    """The alarms table as the CONTRACTS CSV (times ISO 8601 UTC, empty end while open)."""
    out = alarms[ALARM_COLUMNS].copy()
    for column in ("start", "end"):
        out[column] = ["" if pd.isna(value) else value.strftime(_ISO_Z) for value in alarms[column]]
    try:
        out.to_csv(path, index=False, float_format="%.2f", na_rep="")
    except OSError as exc:
        raise InputError(f"{path}: cannot write alarms: {exc.strerror or exc}") from exc
