"""Safecast bGeigie Nano / Plus drive logs: one NMEA-style sentence every five seconds.

    $BNRDD,<device>,<UTC time>,<CPM>,<counts in 5 s>,<total counts>,<A|V>,
           <lat ddmm.mmmm>,<N|S>,<lon dddmm.mmmm>,<E|W>,<altitude m>,<A|V>,<sats>[,<HDOP>]*<hh>

Facts used (Safecast bGeigie Nano firmware log format, as in the project's domain notes):
``hh`` is the NMEA checksum, the XOR of every character between ``$`` and ``*``; the first A|V
says whether the radiation value is valid, the second whether the GPS has a fix; ``#`` lines
are the logger's comments and header. The LND 7317 tube answers about 334 CPM per µSv/h for
Cs-137 (Safecast's calibration); another tube or calibration is given as ``cpm_per_usv_h``, or
by the station's ``sensitivity_cps_per_usv_h`` (× 60) when the store knows the device.

Decisions:

- a line whose radiation flag is V (tube warming up or faulty) is dead-lettered, not stored:
  the store holds only readings the device itself vouched for;
- a line whose GPS flag is V is kept, without a position;
- the dose rate comes from CPM (the device's one-minute moving count); ``counts`` and
  ``interval_s`` hold the non-overlapping five-second count, the honest Poisson observation;
- each device is one mobile station ``bgeigie-<device>``; when the store does not know it, it is
  created from the first line with a GPS fix (name "bGeigie <device>", probe_model "bGeigie",
  position and elevation of that fix, sensitivity from the conversion factor). Readings that
  come before that fix wait for it; if the log never has one, they are dead-lettered with the
  station to add.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import reduce

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
from radmon.models import Reading, Station

DEFAULT_CPM_PER_USV_H = 334.0  # LND 7317 pancake tube, Cs-137 (Safecast)
FIVE_SECONDS = 5.0
# readings of a new device held while waiting for its first GPS fix (about 14 h of log)
MAX_WAITING = 10_000

_SENTENCE = re.compile(r"B[A-Z]{1,3}RDD")  # $BNRDD (Nano), $BMRDD, $BGRDD: the same layout
_DEVICE = re.compile(r"[A-Za-z0-9_.\-]{1,55}")


def checksum(body: str) -> int:
    """The NMEA checksum of the text between ``$`` and ``*``."""
    return reduce(lambda acc, char: acc ^ ord(char), body, 0) & 0xFF


def station_id_of(device: str) -> str:
    return f"bgeigie-{device}"


@dataclass
class _Line:
    number: int
    raw: str
    reading: Reading


def parse(lines: Iterable[str], ctx: ImportContext) -> Iterator[Item]:
    """Readings, stations and dead letters from a bGeigie log."""
    factor = cpm_factor(ctx)
    waiting: dict[str, list[_Line]] = defaultdict(list)
    for number, line in enumerate(lines, start=1):
        raw = line.rstrip("\r\n")
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            reading = _reading(text, factor, ctx)
        except Refused as refused:
            yield ctx.reject(number, refused.detail, raw, refused.station_id)
            continue
        except (ValueError, ArithmeticError) as exc:
            yield ctx.reject(number, f"cannot be read: {exc}", raw)
            continue
        sid = reading.station_id
        if sid in ctx.stations:
            yield reading
        elif reading.lat is not None and reading.lon is not None:
            yield ctx.define(_station(reading, _factor(factor, None)))
            for held in waiting.pop(sid, []):
                yield held.reading
            yield reading
        else:
            held = waiting[sid]
            held.append(_Line(number, raw, reading))
            if len(held) > MAX_WAITING:
                first = held.pop(0)
                yield _no_fix(first, ctx)
    for held_lines in waiting.values():
        for held in held_lines:
            yield _no_fix(held, ctx)


def cpm_factor(ctx: ImportContext) -> float | None:
    """The ``cpm_per_usv_h`` option (None when not given), checked before any line is read."""
    if "cpm_per_usv_h" not in ctx.options:
        return None
    value = ctx.options["cpm_per_usv_h"]
    try:
        factor = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{ctx.path}: option cpm_per_usv_h: {value!r} is not a number") from None
    if not math.isfinite(factor) or factor <= 0:
        raise InputError(f"{ctx.path}: option cpm_per_usv_h: {value!r} must be a positive number")
    return factor


def _no_fix(held: _Line, ctx: ImportContext) -> Item:
    sid = held.reading.station_id
    return ctx.reject(
        held.number,
        f"station {sid!r} is not known and the log has no GPS fix to place it; add the "
        "station ('radmon stations import') and import the file again",
        held.raw,
        sid,
    )


def _factor(given: float | None, known: Station | None) -> float:
    """CPM per µSv/h: the option; else the station's own calibration (a device registered
    with its tube's sensitivity was converted with the LND 7317's and read 2.2 times low);
    else the LND 7317's."""
    if given is not None:
        return given
    if known is not None and known.sensitivity_cps_per_usv_h:
        return known.sensitivity_cps_per_usv_h * 60.0
    return DEFAULT_CPM_PER_USV_H


def _station(reading: Reading, factor: float) -> Station:
    device = reading.station_id.removeprefix("bgeigie-")
    return Station(
        station_id=reading.station_id,
        name=f"bGeigie {device}",
        lat=reading.lat,
        lon=reading.lon,
        elevation_m=reading.altitude_m,
        probe_model="bGeigie",
        interval_s=int(FIVE_SECONDS),
        sensitivity_cps_per_usv_h=factor / 60.0,
    )


def _reading(text: str, option: float | None, ctx: ImportContext) -> Reading:
    if not text.startswith("$"):
        raise Refused("not a bGeigie log line (expected '$BNRDD,...*hh')")
    star = text.rfind("*")
    if star < 0:
        raise Refused("no NMEA checksum ('*hh' at the end of the line)")
    body, given = text[1:star], text[star + 1 :].strip()
    if not re.fullmatch(r"[0-9A-Fa-f]{2}", given):
        raise Refused(f"checksum {given!r} is not two hexadecimal digits")
    computed = checksum(body)
    if int(given, 16) != computed:
        raise Refused(
            f"checksum mismatch: the line says {given.upper()}, its content gives "
            f"{computed:02X}; the line is corrupt"
        )
    fields = [f.strip() for f in body.split(",")]
    if not _SENTENCE.fullmatch(fields[0]):
        raise Refused(f"sentence '${fields[0][:16]}' is not a bGeigie reading ($BNRDD)")
    if not 14 <= len(fields) <= 15:
        raise Refused(f"has {len(fields)} fields; a bGeigie reading has 14 or 15")
    device = fields[1]
    if not _DEVICE.fullmatch(device):
        raise Refused(field_error("device", f"{device[:60]!r} is not a device id"))
    sid = station_id_of(device)
    known = ctx.stations.get(sid)
    try:
        moment = times.parse_time(fields[2], known.timezone if known else None)
    except InputError as exc:
        raise Refused(field_error("time", str(exc)), sid) from exc
    ctx.not_ahead(moment, "time", sid)
    cpm = _count(fields[3], "CPM", sid)
    counts = _count(fields[4], "counts per 5 s", sid)
    if fields[6] == "V":
        raise Refused(
            "the device flags this radiation value void (V): tube warming up or faulty; "
            "not stored as a reading",
            sid,
        )
    if fields[6] != "A":
        raise Refused(field_error("radiation validity", f"{fields[6]!r} is neither A nor V"), sid)
    position: dict[str, float | None] = {}
    if fields[12] == "A":
        position["lat"] = _degrees(fields[7], fields[8], "NS", 90, "latitude", sid)
        position["lon"] = _degrees(fields[9], fields[10], "EW", 180, "longitude", sid)
        position["altitude_m"] = _altitude(fields[11], sid)
    elif fields[12] != "V":
        raise Refused(field_error("GPS validity", f"{fields[12]!r} is neither A nor V"), sid)
    try:
        return Reading(
            station_id=sid,
            time=moment,
            dose_rate_nsv_h=cpm / _factor(option, known) * 1000.0,
            counts=counts,
            interval_s=FIVE_SECONDS,
            **position,
        )
    except ValidationError as exc:
        shown, names = {"dose_rate_nsv_h": f"{cpm} CPM"}, {"dose_rate_nsv_h": "CPM"}
        raise Refused(validation_detail(exc, shown, names), sid) from exc


def _count(text: str, name: str, sid: str) -> int:
    if not re.fullmatch(r"\d{1,9}", text):
        raise Refused(field_error(name, f"{text[:40]!r} is not a whole number of counts"), sid)
    return int(text)


def _degrees(text: str, hemisphere: str, signs: str, limit: int, name: str, sid: str) -> float:
    """``ddmm.mmmm`` (or ``dddmm.mmmm``) and its hemisphere letter to signed decimal degrees."""
    if not re.fullmatch(r"\d{1,5}(\.\d+)?", text):
        raise Refused(field_error(name, f"{text[:40]!r} is not ddmm.mmmm"), sid)
    value = float(text)
    degrees = int(value // 100)
    minutes = value - degrees * 100
    result = degrees + minutes / 60.0
    if minutes >= 60 or result > limit:
        raise Refused(field_error(name, f"{text!r} is not a {name} in ddmm.mmmm"), sid)
    if hemisphere == signs[0]:
        return result
    if hemisphere == signs[1]:
        return -result
    raise Refused(
        field_error(f"{name} hemisphere", f"{hemisphere[:8]!r} is not {signs[0]} or {signs[1]}"),
        sid,
    )


def _altitude(text: str, sid: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise Refused(field_error("altitude", f"{text[:40]!r} is not a number"), sid) from None
    if not math.isfinite(value):
        raise Refused(field_error("altitude", f"{text!r} is not a finite number"), sid)
    return value


IMPORTER = Importer(
    kind="bgeigie",
    description="Safecast bGeigie Nano/Plus log ($BNRDD lines), CPM converted to nSv/h",
    parse=parse,
    options=frozenset({"cpm_per_usv_h"}),
)
