"""Stations CSV (CONTRACTS): read and validate the whole file before anything is stored."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from radmon.errors import InputError, first_problem, not_utf8
from radmon.models import Station

REQUIRED = ("station_id", "name", "lat", "lon")
OPTIONAL = (
    "elevation_m",
    "probe_model",
    "district",
    "timezone",
    "interval_s",
    "sensitivity_cps_per_usv_h",
    "has_rain_gauge",
)
COLUMNS = REQUIRED + OPTIONAL  # the order files are written in


_EXTRA = "\x00extra"  # no header names this


def read_stations_csv(path: Path) -> list[Station]:
    """Parse *path*; the first bad row raises InputError naming file, line and field."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        with handle:
            return _stations(path, handle)
    except UnicodeDecodeError as exc:
        raise not_utf8(path) from exc


def _stations(path: Path, handle: TextIO) -> list[Station]:
    reader = csv.DictReader(handle, restkey=_EXTRA)  # cells beyond the header
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(f"{path}:1: missing required column(s) {', '.join(missing)}")
    found: dict[str, Station] = {}
    for row in reader:
        line = reader.line_num
        extra = row.pop(_EXTRA, [])
        if any(cell.strip() for cell in extra):  # a shifted row ("21,5" for 21.5) must not pass
            raise InputError(
                f"{path}:{line}: {len(header) + len(extra)} fields; the header names {len(header)}"
            )
        values = {
            k.strip(): v.strip()
            for k, v in row.items()
            if k and k.strip() in REQUIRED + OPTIONAL and v is not None and v.strip() != ""
        }
        try:
            station = Station(**values)
        except ValidationError as exc:
            field, message, got = first_problem(exc, "row")
            raise InputError(f"{path}:{line}: field {field!r}: {message} (got {got!r})") from exc
        if station.station_id in found:
            raise InputError(
                f"{path}:{line}: field 'station_id': {station.station_id!r} appears twice"
            )
        found[station.station_id] = station
    return list(found.values())
