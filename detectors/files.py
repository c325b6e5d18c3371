"""``radmon detect`` files (CONTRACTS): a readings CSV in, an alarms CSV out.

Tens of millions of rows must parse in seconds, so columns are parsed whole by pandas; each
distinct time string is parsed once. A bad cell stops the run with the file, line and field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from detectors.frames import ALARM_COLUMNS
from radmon import times
from radmon.errors import InputError, not_utf8
from radmon.models import MAX_PRECIP_MM_H

REQUIRED = ("time", "station_id", "dose_rate_nsv_h")
OPTIONAL = ("precip_mm_h",)
# A time must name its zone: 'Z' or an offset (ARCHITECTURE: no silent 7-hour shift).
_ZONED = re.compile(r"(Z|z|[+-]\d{2}(:?\d{2})?)$")
_ISO_Z = "%Y-%m-%dT%H:%M:%SZ"
_EXTRA = "\x00extra"  # no header can name its column so
_TOO_MANY = "more cells than the header (a decimal comma? write 21.5, not 21,5)"


def read_readings_csv(path: Path, zones: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The readings of *path* as time (UTC), station_id, dose_rate_nsv_h, precip_mm_h.

    *zones*: each station's time zone, for times written without one (else refused)."""
    zones = zones or {}
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
    wanted = [c for c in (*REQUIRED, *OPTIONAL) if c in columns] + [_EXTRA]
    try:
        raw = _read_cells(path, [*header, _EXTRA], wanted)
    except UnicodeDecodeError as exc:
        raise not_utf8(path) from exc
    except (OSError, pd.errors.ParserError) as exc:
        # two cells too many or more: the parser stops there, and names the line
        if too_many := re.search(r"Expected \d+ fields in line (\d+)", str(exc)):
            raise InputError(f"{path}: line {too_many[1]}: {_TOO_MANY}") from exc
        raise InputError(f"{path}: cannot read readings: {exc}") from exc
    raw.columns = [c.strip() for c in raw.columns]
    raw = raw[(raw != "").any(axis=1)]  # blank lines, kept above only to count them
    extra = (raw.pop(_EXTRA).str.strip() != "").to_numpy()
    if extra.any():  # "21,5" for 21.5 shifts the row; only a trailing comma is harmless
        line = int(raw.index[np.flatnonzero(extra)[0]]) + 2
        raise InputError(f"{path}: line {line}: {_TOO_MANY}")
    ids = _station_ids(path, raw["station_id"])
    frame = pd.DataFrame(
        {
            "time": _times(path, raw["time"], ids, zones),
            "station_id": ids,
            "dose_rate_nsv_h": _numbers(path, raw["dose_rate_nsv_h"], "dose_rate_nsv_h", False),
        }
    )
    if "precip_mm_h" in raw:
        precip = _numbers(path, raw["precip_mm_h"], "precip_mm_h", True)
        with np.errstate(invalid="ignore"):
            odd = (precip < 0) | (precip > MAX_PRECIP_MM_H) | np.isinf(precip)
        if odd.any():  # as the ingest refuses it: a gauge's rate steers the rain model
            row = int(np.flatnonzero(odd)[0])
            raise _fail(
                raw["precip_mm_h"],
                path,
                row,
                "precip_mm_h",
                f"{precip[row]:g} is outside 0-{MAX_PRECIP_MM_H:g} mm/h",
            )
        frame["precip_mm_h"] = precip
    else:
        frame["precip_mm_h"] = np.nan
    return frame


def _read_cells(path: Path, names: list[str], wanted: list[str]) -> pd.DataFrame:
    """Every row's cells as text: the header's names and one more, which a row with a cell
    too many fills (and is refused for); a short row's missing cells are empty."""
    cells = pd.read_csv(
        path,
        header=None,
        skiprows=1,
        names=names,  # (usecols cannot go with a name no row fills: every cell is read)
        dtype=str,
        keep_default_na=False,
        encoding="utf-8-sig",
        index_col=False,  # a trailing comma on the rows must not make the times an index
        skip_blank_lines=False,  # the row's index is its line - 2, for the messages
    )
    return cells[[c for c in cells.columns if c.strip() in wanted]]


def _fail(column: pd.Series, path: Path, row: int, field: str, problem: str) -> InputError:
    """The error for the *row*-th value of *column*; its index is its line - 2."""
    return InputError(f"{path}: line {int(column.index[row]) + 2}: {field}: {problem}")


def _times(path: Path, column: pd.Series, ids: pd.Series, zones: Mapping[str, str]) -> pd.Series:
    """Each row's time in UTC; a time without a zone is read in its station's *zones* entry
    (``--stations``), and refused where the station has none."""
    # "...z" is RFC 3339's lower-case Z, which the ISO parser does not take
    codes, uniques = pd.factorize(column.str.strip().str.replace(r"z$", "Z", regex=True))
    zoned = np.fromiter((bool(_ZONED.search(u)) for u in uniques), bool, len(uniques))
    parsed = pd.to_datetime(pd.Series(uniques), format="ISO8601", utc=True, errors="coerce")
    stamps = pd.DatetimeIndex(parsed)[codes]
    wrong = parsed.isna().to_numpy() & zoned
    if not zoned.all():
        naive_rows = ~zoned[codes]
        zone_of = ids[naive_rows].map(zones)
        if zone_of.isna().any():
            row = int(np.flatnonzero(naive_rows)[np.flatnonzero(zone_of.isna().to_numpy())[0]])
            raise _fail(
                column,
                path,
                row,
                "time",
                f"{column.iloc[row].strip()!r} has no zone (add Z or an offset, or give the "
                "station a timezone in --stations)",
            )
        local = _local_times(path, column, codes, uniques, naive_rows, zone_of)
        stamps = stamps.where(~naive_rows, local)
    if wrong.any():
        bad = int(np.flatnonzero(wrong)[0])
        row = int(np.flatnonzero(codes == bad)[0])
        raise _fail(column, path, row, "time", f"{uniques[bad]!r} is not ISO 8601")
    outside = np.asarray((stamps < times.EARLIEST) | (stamps >= times.LATEST))
    if outside.any():  # a mistyped year is not history
        row = int(np.flatnonzero(outside)[0])
        raise _fail(
            column,
            path,
            row,
            "time",
            f"{column.iloc[row].strip()!r} is outside the years "
            f"{times.EARLIEST.year}-{times.LATEST.year - 1}",
        )
    return pd.Series(stamps, index=column.index)


def _local_times(
    path: Path,
    column: pd.Series,
    codes: np.ndarray,
    uniques: np.ndarray,
    naive_rows: np.ndarray,
    zone_of: pd.Series,
) -> pd.DatetimeIndex:
    """The zone-less rows' times (*naive_rows*, in their stations' zones *zone_of*) in UTC,
    each (text, zone) pair parsed once; every other row NaT."""
    out = pd.Series(pd.NaT, index=range(len(codes)), dtype="datetime64[ns, UTC]")
    positions = np.flatnonzero(naive_rows)
    for zone, rows in pd.Series(positions).groupby(zone_of.to_numpy()):
        texts = pd.Series(uniques[codes[rows.to_numpy()]])
        parsed = pd.to_datetime(texts, format="ISO8601", errors="coerce")
        bad = parsed.isna().to_numpy()
        try:
            utc = parsed.dt.tz_localize(zone, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError) as exc:  # a local time a clock change skips or repeats
            raise InputError(f"{path}: time: {exc} in {zone}") from exc
        if bad.any():
            row = int(rows.iloc[int(np.flatnonzero(bad)[0])])
            raise _fail(column, path, row, "time", f"{column.iloc[row].strip()!r} is not ISO 8601")
        out.iloc[rows.to_numpy()] = utc.dt.tz_convert("UTC").to_numpy()
    return pd.DatetimeIndex(out)


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
