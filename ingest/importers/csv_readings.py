"""The detection CSV (CONTRACTS): ``time,station_id,dose_rate_nsv_h[,precip_mm_h]``, and
optionally a mobile station's ``lat,lon,altitude_m`` (as ``radmon export csv`` writes them).

The header is required (it says which column is which); extra columns are ignored and rows may
come in any order. Values are already in nSv/h. A time without a zone is accepted only for a
station whose timezone is configured: guessing would shift UTC+7 data by seven hours.
"""

from __future__ import annotations

import csv
import math
from collections import deque
from collections.abc import Iterable, Iterator

from pydantic import ValidationError

from ingest.importers.base import (
    ImportContext,
    Importer,
    Item,
    Refused,
    field_error,
    validation_detail,
)
from radmon import times
from radmon.errors import InputError
from radmon.models import Reading

REQUIRED = ("time", "station_id", "dose_rate_nsv_h")
OPTIONAL = ("precip_mm_h", "lat", "lon", "altitude_m")  # a mobile station's position


class _Tap:
    """The file's lines for the csv reader, remembered (the raw record) and given back when a
    record must be read again."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self._again: deque[str] = deque()
        self._taken: list[str] = []

    def __iter__(self) -> _Tap:
        return self

    def __next__(self) -> str:
        line = self._again.popleft() if self._again else next(self._lines)
        self._taken.append(line)
        return line

    def take(self) -> list[str]:
        taken, self._taken = self._taken, []
        return taken

    def again(self, lines: list[str]) -> None:
        self._again.extendleft(reversed(lines))


def _raw(lines: list[str]) -> str:
    return "".join(lines).rstrip("\r\n")


def parse(lines: Iterable[str], ctx: ImportContext) -> Iterator[Item]:
    """Readings and dead letters from a detection CSV; a missing header stops the import."""
    tap = _Tap(lines)
    reader = csv.reader(tap)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(
            f"{ctx.path}:1: the file is empty; expected a header naming {','.join(REQUIRED)}"
        ) from None
    except csv.Error as exc:
        raise InputError(f"{ctx.path}:1: the header is not CSV: {exc}") from exc
    names = [name.strip().lstrip("\ufeff") for name in header]
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise InputError(
            f"{ctx.path}:1: missing required column(s) {', '.join(missing)}; the header must "
            f"name {','.join(REQUIRED)} (optional: {','.join(OPTIONAL)})"
        )
    columns = {name: names.index(name) for name in REQUIRED + OPTIONAL if name in names}
    line = len(tap.take()) + 1  # the first physical line of the next record
    while True:
        error: csv.Error | None = None
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row, error = [], exc
        taken = tap.take()
        if len(taken) > 1 and (error is not None or _spills(row, columns)):
            # A quote left open ran on into the next lines, which are records of their own
            # (a stray one swallowed thousands): refuse its line, read the others again.
            yield ctx.reject(
                line, "not valid CSV: a quote opened on this line is not closed", _raw(taken[:1])
            )
            tap.again(taken[1:])
            line += 1
            continue
        raw, first, line = _raw(taken), line, line + len(taken)
        if error is not None:
            yield ctx.reject(first, f"not valid CSV: {error}", raw)
        elif not any(cell.strip() for cell in row):
            continue
        elif len(row) > len(names):  # 105,2 for 105.2: the 2 must not land in another column
            yield ctx.reject(first, f"has {len(row)} fields; the header names {len(names)}", raw)
        else:
            yield _row(row, columns, first, raw, ctx)


def _spills(row: list[str], columns: dict[str, int]) -> bool:
    """Whether a line break sits in a column radmon reads (in a note column it may)."""
    return any(i < len(row) and ("\n" in row[i] or "\r" in row[i]) for i in columns.values())


def _row(row: list[str], columns: dict[str, int], line: int, raw: str, ctx: ImportContext) -> Item:
    def cell(name: str) -> str:
        index = columns.get(name)
        return row[index].strip() if index is not None and index < len(row) else ""

    station_id = cell("station_id")
    try:
        if not station_id:
            raise Refused(field_error("station_id", "empty"))
        station = ctx.stations.get(station_id)
        if station is None:
            raise Refused(
                field_error(
                    "station_id",
                    f"unknown station {station_id!r}; add it with 'radmon stations import' "
                    "and import the file again",
                ),
                station_id,
            )
        try:
            moment = times.parse_time(cell("time"), station.timezone)
        except InputError as exc:
            raise Refused(field_error("time", str(exc)), station_id) from exc
        ctx.not_ahead(moment, "time", station_id)
        dose = _number(cell("dose_rate_nsv_h"), "dose_rate_nsv_h", required=True)
        extra = {name: _number(cell(name), name, required=False) for name in OPTIONAL}
        try:
            return Reading(station_id=station_id, time=moment, dose_rate_nsv_h=dose, **extra)
        except ValidationError as exc:
            raise Refused(validation_detail(exc), station_id) from exc
    except Refused as refused:
        return ctx.reject(line, refused.detail, raw, refused.station_id or station_id)
    except (ValueError, ArithmeticError) as exc:  # anything else odd in one row stays in it
        return ctx.reject(line, f"cannot be read: {exc}", raw, station_id)


def _number(text: str, name: str, *, required: bool) -> float | None:
    if not text:
        if required:
            raise Refused(field_error(name, "empty"))
        return None
    try:
        value = float(text)
    except ValueError:
        raise Refused(field_error(name, f"{text!r} is not a number")) from None
    if not math.isfinite(value):
        raise Refused(field_error(name, f"{text!r} is not a finite number"))
    return value


IMPORTER = Importer(
    kind="csv",
    description="detection CSV: time,station_id,dose_rate_nsv_h[,precip_mm_h], values in nSv/h",
    parse=parse,
)
