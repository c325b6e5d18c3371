"""EURDEP 2.x: the European radiological data exchange text format.

Facts used (public EURDEP 2.0/2.1 messages and readers: the BfS eurdep-parser grammar and its
unit and sample-type code lists, the FANC Eurdep.NET field definitions, Icelandic EURDEP
messages as published):

- every statement starts with ``\\`` and ends with ``;``; a file holds one or more messages
  ``\\BEGIN_EURDEP;`` ... ``\\END_EURDEP;`` with blocks ``\\BEGIN_<NAME>;`` ... ``\\END_<NAME>;``
  (HEADER, LOCALITY, RADIOLOGICAL, and others such as METEO that radmon does not read);
- LOCALITY and RADIOLOGICAL blocks start with ``\\FIELD_LIST A,B,C;`` naming the columns of the
  records that follow (``\\IS0002,4.70E+01,2013-12-15T00:00Z,...;``); a ``\\BEGIN_DEFAULT;`` block
  gives values (``\\UNIT nSv/h;``) for fields a record leaves empty or marks ``!``; ``-`` is
  an explicit "no value"; text may be quoted with double quotes; ``\\BEGIN_COMMENT;`` blocks hold
  free text;
- LOCALITY fields: LOCALITY_CODE, LOCALITY_NAME, LATITUDE, LONGITUDE (decimal degrees, written
  ``N64.0508`` / ``W021.5035`` or signed), HEIGHT_ABOVE_SEA, HEIGHT_ABOVE_LAND, NUTS;
- RADIOLOGICAL fields: LOCALITY_CODE, BEGIN, END, VALUE, UNIT, NUCLIDE, SAMPLE_TYPE (A5 =
  external radiation), UNCERTAINTY, UNCERTAINTY_UNIT, VALIDATED, ...; units are upper case
  (``NSV/H``, ``USV/H``, ``NGY/H``) and some senders write ``nSv/h``;
- ambient gamma dose rate is NUCLIDE ``T-GAMMA`` with SAMPLE_TYPE A5.

Decisions (where the format leaves room, the parser is tolerant and says what it did):

- only T-GAMMA records (of sample type A5, when one is given) become readings; other records are
  counted as skipped, not dead-lettered: they are valid data radmon does not hold;
- the reading's time is END, the end of the measuring period, as for radmon's own probes; the
  period's length (END - BEGIN) becomes ``interval_s`` when it is positive;
- units are matched case-insensitively; ``NGY/H`` (air kerma) is refused with that reason, as
  radmon does not convert air kerma to H*(10);
- VALIDATED: ``2`` or text saying "not plausible"/"invalid" is dead-lettered (the three-valued
  validation of IRIX is assumed); empty, ``0``, ``1`` and the other IRIX texts are stored;
  anything else is dead-lettered, since it may be a marking radmon cannot read;
- a line that starts with ``\\`` starts a statement: one still open without its ``;`` is
  dead-lettered there, so a lost ``;`` or a stray quote spoils one record, not the next ones;
- each LOCALITY record upserts the station with its code as ``station_id``; fields radmon keeps
  that EURDEP does not carry (timezone, probe model, calibration) are kept from the store;
- radiological records may name a locality defined earlier in the file or any station the
  store knows; anything else is dead-lettered.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from ingest.importers.base import (
    ImportContext,
    Importer,
    Item,
    Refused,
    field_error,
    validation_detail,
)
from radmon import times, units
from radmon.errors import InputError
from radmon.models import Reading, Station

GAMMA_DOSE_RATE = "T-GAMMA"
EXTERNAL_RADIATION = "A5"
MAX_STATEMENT_CHARS = 65_536
_NOT_PLAUSIBLE = {"2", "NOT PLAUSIBLE", "VALIDATED - NOT PLAUSIBLE", "INVALID"}
_PLAUSIBLE = {"", "0", "1", "NOT VALIDATED", "VALIDATED", "VALIDATED - PLAUSIBLE", "PLAUSIBLE"}
_COORDINATE = re.compile(r"([NSEW])?\s*([+-]?\d{1,3}(?:\.\d*)?)\s*([NSEW])?", re.IGNORECASE)
_READ_BLOCKS = {"LOCALITY", "RADIOLOGICAL"}
# a refused reading's field as the file names it
_FIELD_NAMES = {"dose_rate_nsv_h": "VALUE", "uncertainty_nsv_h": "UNCERTAINTY", "time": "END"}


@dataclass
class _Statement:
    line: int
    body: str  # without the leading backslash and the closing semicolon
    raw: str


@dataclass
class _Junk:
    line: int
    detail: str
    raw: str


def parse(lines: Iterable[str], ctx: ImportContext) -> Iterator[Item]:
    """Stations (LOCALITY), readings (T-GAMMA) and dead letters from EURDEP messages."""
    block: str | None = None
    in_default = False
    fields: list[str] | None = None
    defaults: dict[str, str] = {}
    for item in _statements(lines):
        if isinstance(item, _Junk):
            yield ctx.reject(item.line, item.detail, item.raw)
            continue
        parts = item.body.split(None, 1)
        keyword = parts[0].upper() if parts else ""
        rest = parts[1] if len(parts) > 1 else ""
        if keyword.startswith("BEGIN_"):
            name = keyword.removeprefix("BEGIN_")
            if name == "DEFAULT":
                in_default = True
            elif name != "COMMENT":
                block, fields, defaults, in_default = name, None, {}, False
            continue
        if keyword.startswith("END_"):
            name = keyword.removeprefix("END_")
            if name == "DEFAULT":
                in_default = False
            elif name != "COMMENT":
                block, fields, defaults, in_default = None, None, {}, False
            continue
        if block not in _READ_BLOCKS:
            continue  # HEADER, METEO and blocks radmon does not read
        if keyword == "FIELD_LIST":
            fields = [f.strip().upper() for f in rest.split(",") if f.strip()]
            continue
        if in_default:
            value = rest.strip()
            defaults[keyword] = value[1:-1] if _quoted(value) else value
            continue
        try:
            record = _record(item, fields, defaults)
            if block == "LOCALITY":
                station = _locality(record, ctx)
                if station is not None:
                    yield ctx.define(station)
            else:
                reading = _radiological(record, ctx)
                if reading is not None:
                    yield reading
        except Refused as refused:
            yield ctx.reject(item.line, refused.detail, item.raw, refused.station_id)
        except (ValueError, ArithmeticError) as exc:
            yield ctx.reject(item.line, f"cannot be read: {exc}", item.raw)


def _statements(lines: Iterable[str]) -> Iterator[_Statement | _Junk]:
    """Split the text into ``\\...;`` statements, skipping comment blocks' free text."""
    pending: _Statement | None = None
    in_comment = False
    for number, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if in_comment:
            if text.strip().upper().startswith("\\END_COMMENT"):
                in_comment = False
            continue
        if pending is None:
            stripped = text.strip()
            if not stripped:
                continue
            if not stripped.startswith("\\"):
                yield _Junk(number, "not a EURDEP statement ('\\...;')", text)
                continue
            pending = _Statement(number, stripped, text)
        elif text.lstrip().startswith("\\"):
            # a new statement: the open one lacks its ';' (a stray quote or a lost ';' must
            # not carry the next records, or the block's end, into it)
            yield _Junk(pending.line, "statement has no closing ';'", pending.raw)
            pending = _Statement(number, text.strip(), text)
        else:
            pending.body += " " + text.strip()
            pending.raw += "\n" + text
        while pending is not None:
            end = _terminator(pending.body)
            if end < 0:
                if len(pending.body) > MAX_STATEMENT_CHARS:
                    yield _Junk(pending.line, "statement has no closing ';'", pending.raw)
                    pending = None
                break
            body, rest = pending.body[1:end].strip(), pending.body[end + 1 :].strip()
            yield _Statement(pending.line, body, pending.raw)
            if body.upper().startswith("BEGIN_COMMENT"):
                in_comment = True
                pending = None
                break
            # another statement on the same line; anything else after ';' is ignored
            pending = _Statement(pending.line, rest, pending.raw) if rest.startswith("\\") else None
    if pending is not None:
        yield _Junk(pending.line, "statement has no closing ';'", pending.raw)


def _terminator(text: str) -> int:
    """Index of the first ``;`` outside double quotes, or -1."""
    quoted = False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            return index
    return -1


def _quoted(value: str) -> bool:
    return len(value) >= 2 and value[0] == value[-1] == '"'


def _split(body: str) -> list[str]:
    values, current, quoted = [], [], False
    for char in body:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            values.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    values.append("".join(current).strip())
    return [v[1:-1] if _quoted(v) else v for v in values]


def _record(item: _Statement, fields: list[str] | None, defaults: dict[str, str]) -> dict[str, str]:
    if fields is None:
        raise Refused("record before the block's \\FIELD_LIST")
    values = _split(item.body)
    if len(values) > len(fields):
        raise Refused(f"has {len(values)} values; the FIELD_LIST names {len(fields)}")
    record = dict(defaults)
    for name, value in zip(fields, values, strict=False):
        if value == "-":
            record[name] = ""
        elif value and value != "!":
            record[name] = value
    return record


def _locality(record: dict[str, str], ctx: ImportContext) -> Station | None:
    code = record.get("LOCALITY_CODE", "")
    if not code:
        raise Refused(field_error("LOCALITY_CODE", "empty"))
    found: dict[str, object] = {
        "station_id": code,
        "name": record.get("LOCALITY_NAME") or code,
        "lat": _coordinate(record.get("LATITUDE", ""), "NS", 90, "LATITUDE", code),
        "lon": _coordinate(record.get("LONGITUDE", ""), "EW", 180, "LONGITUDE", code),
    }
    height = record.get("HEIGHT_ABOVE_SEA", "")
    if height:
        found["elevation_m"] = _float(height, "HEIGHT_ABOVE_SEA", code)
    known = ctx.stations.get(code)
    merged = {**(known.model_dump() if known else {}), **found}
    try:
        station = Station(**merged)
    except ValidationError as exc:
        raise Refused(validation_detail(exc), code) from exc
    return None if station == known else station


def _coordinate(text: str, signs: str, limit: int, name: str, code: str) -> float:
    match = _COORDINATE.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise Refused(field_error(name, f"{text[:40]!r} is not decimal degrees"), code)
    before, number, after = match.groups()
    letters = {h.upper() for h in (before, after) if h}
    if len(letters) > 1 or not letters <= set(signs):
        raise Refused(
            field_error(name, f"{text!r}: hemisphere must be {signs[0]} or {signs[1]}"), code
        )
    value = float(number)
    if letters and value < 0:
        raise Refused(field_error(name, f"{text!r} has both a sign and a hemisphere"), code)
    if letters == {signs[1]}:
        value = -value
    if not -limit <= value <= limit:
        raise Refused(field_error(name, f"{text!r} is out of range"), code)
    return value


def _float(text: str, name: str, code: str | None) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Refused(field_error(name, f"{text[:40]!r} is not a number"), code) from None
    if not math.isfinite(value):
        raise Refused(field_error(name, f"{text!r} is not a finite number"), code)
    return value


def _radiological(record: dict[str, str], ctx: ImportContext) -> Reading | None:
    nuclide = record.get("NUCLIDE", "").upper()
    sample_type = record.get("SAMPLE_TYPE", "").upper()
    if nuclide != GAMMA_DOSE_RATE or (
        sample_type and not sample_type.startswith(EXTERNAL_RADIATION)
    ):
        ctx.skipped += 1
        return None
    code = record.get("LOCALITY_CODE", "")
    if not code:
        raise Refused(field_error("LOCALITY_CODE", "empty"))
    station = ctx.stations.get(code)
    if station is None:
        raise Refused(
            field_error(
                "LOCALITY_CODE",
                f"unknown locality {code[:64]!r}: not in the file's LOCALITY block nor among "
                "the stations",
            ),
            code,
        )
    validated = record.get("VALIDATED", "").upper()
    if validated in _NOT_PLAUSIBLE:
        raise Refused(
            field_error("VALIDATED", f"{validated!r}: the sender marks the value not plausible"),
            code,
        )
    if validated not in _PLAUSIBLE:
        raise Refused(
            field_error(
                "VALIDATED", f"{validated[:40]!r} is none of 0, 1, 2 or the IRIX validation texts"
            ),
            code,
        )
    end = ctx.not_ahead(_time(record.get("END", ""), "END", station.timezone, code), "END", code)
    value = _float(record.get("VALUE", ""), "VALUE", code)
    unit = record.get("UNIT", "")
    dose = _to_nsv_h(value, unit, "UNIT", code)
    interval = _interval(record.get("BEGIN", ""), end, station.timezone)
    uncertainty = _uncertainty(record)
    try:
        return Reading(
            station_id=code,
            time=end,
            dose_rate_nsv_h=dose,
            uncertainty_nsv_h=uncertainty,
            interval_s=interval,
        )
    except ValidationError as exc:
        shown = {"dose_rate_nsv_h": f"{value} {unit}"}
        raise Refused(validation_detail(exc, shown, _FIELD_NAMES), code) from exc


def _time(text: str, name: str, zone: str | None, code: str) -> datetime:
    if not text:
        raise Refused(field_error(name, "empty"), code)
    try:
        return times.parse_time(text, zone)
    except InputError as exc:
        raise Refused(field_error(name, str(exc)), code) from exc


def _to_nsv_h(value: float, unit: str, name: str, code: str) -> float:
    if not unit:
        raise Refused(field_error(name, "empty (and no default)"), code)
    if unit.strip().upper() in ("NGY/H", "UGY/H"):
        raise Refused(
            field_error(name, f"{unit!r} is air kerma; radmon stores H*(10) and does not convert"),
            code,
        )
    if not units.is_supported(unit) or units.is_count_rate(unit):
        raise Refused(field_error(name, f"{unit[:20]!r} is not a dose-rate unit"), code)
    return units.to_nsv_h(value, unit)


def _interval(text: str, end: datetime, zone: str | None) -> float | None:
    """END - BEGIN in seconds; a missing or odd BEGIN leaves the interval unknown."""
    if not text:
        return None
    try:
        begin = times.parse_time(text, zone)
    except InputError:
        return None
    seconds = (end - begin).total_seconds()
    return seconds if seconds > 0 else None


def _uncertainty(record: dict[str, str]) -> float | None:
    """The uncertainty in nSv/h when it is given in a dose-rate unit and is plausible."""
    text, unit = record.get("UNCERTAINTY", ""), record.get("UNCERTAINTY_UNIT", "")
    if not text or not unit or unit.strip() == "%" or units.is_count_rate(unit):
        return None
    try:
        value = units.to_nsv_h(float(text), unit)
    except (ValueError, InputError):
        return None
    return value if 0 <= value <= units.MAX_PLAUSIBLE_NSV_H else None


IMPORTER = Importer(
    kind="eurdep",
    description="EURDEP 2.x messages: LOCALITY stations and T-GAMMA dose rates",
    parse=parse,
)
