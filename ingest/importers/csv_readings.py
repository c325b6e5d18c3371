"""The detection CSV (CONTRACTS): ``time,station_id,dose_rate_nsv_h[,precip_mm_h]``.

The header is required (it says which column is which); extra columns are ignored and rows may
come in any order. Values are already in nSv/h. A time without a zone is accepted only for a
station whose timezone is configured: guessing would shift UTC+7 data by seven hours.
"""

from __future__ import annotations

import csv
import math
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
OPTIONAL = ("precip_mm_h",)


class _Tap:
    """Iterates the file's lines for the csv reader and remembers them: the raw record."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self._taken: list[str] = []

    def __iter__(self) -> _Tap:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self._taken.append(line)
        return line

    def take(self) -> str:
        raw = "".join(self._taken).rstrip("\r\n")
        self._taken.clear()
        return raw


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
    tap.take()
    consumed = reader.line_num
    while True:
        line = consumed + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            consumed = reader.line_num
            yield ctx.reject(line, f"not valid CSV: {exc}", tap.take())
            continue
        consumed = reader.line_num
        raw = tap.take()
        if not any(cell.strip() for cell in row):
            continue
        yield _row(row, columns, line, raw, ctx)


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
        dose = _number(cell("dose_rate_nsv_h"), "dose_rate_nsv_h", required=True)
        precip = _number(cell("precip_mm_h"), "precip_mm_h", required=False)
        try:
            return Reading(
                station_id=station_id, time=moment, dose_rate_nsv_h=dose, precip_mm_h=precip
            )
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
