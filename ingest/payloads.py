"""Reading messages (MQTT and HTTP push, CONTRACTS) decoded once: readings and dead letters.

Everything refused becomes a DeadLetter with a reason a person can act on; one bad item of a
batch never costs the good ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, Any, get_args, get_origin

import annotated_types
import msgspec
from sqlalchemy.exc import SQLAlchemyError

from ingest.stations import StationDirectory
from radmon.config import IngestSettings
from radmon.errors import InputError
from radmon.models import (
    DEAD_LETTER_MAX_PAYLOAD,
    DeadLetter,
    Reading,
    ReadingRow,
    Station,
    WireReading,
    parse_wire,
    reading_row,
    to_reading,
)
from radmon.times import EARLIEST, LATEST, zone
from radmon.units import MAX_PLAUSIBLE_NSV_H, factor_to_nsv_h

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Decoded:
    readings: list[ReadingRow] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    # refused for a time too far ahead of the clock (also among the letters): the detectors
    # hear of them, so that a probe whose clock or zone is wrong raises its own alarm
    ahead: list[ReadingRow] = field(default_factory=list)

    def extend(self, other: Decoded) -> None:
        self.readings.extend(other.readings)
        self.letters.extend(other.letters)
        self.ahead.extend(other.ahead)


@dataclass(slots=True)
class Context:
    """Where a message came from and against what it is judged."""

    source: str  # mqtt, http
    origin: str  # the topic, or the client's address
    received_at: datetime
    limits: IngestSettings


def decode_message(
    raw: bytes, station_id: str, stations: StationDirectory, ctx: Context
) -> Decoded:
    """Decode one message whose channel (topic or token) names *station_id*.

    The common case, a message of a known station whose every item is plainly valid, takes
    the plain path; anything else goes through the careful path, which judges item by item
    and keeps each refusal with its raw payload. Both give the same readings.
    """
    if len(raw) > ctx.limits.max_payload_bytes:
        return Decoded(letters=[oversized(raw, station_id, ctx, len(raw))])
    station = stations.get(station_id)
    try:
        if station is not None:
            readings = _plain(raw, station, ctx)
            if readings is not None:
                return Decoded(readings=readings)
        return _careful(raw, station_id, station, ctx)
    except SQLAlchemyError:
        raise  # the store is away (reading the stations): not the message's fault
    except Exception as exc:  # a message must never stop the ingest: keep it, say why
        log.exception("a message of %s could not be decoded", station_id)
        reason = f"could not be decoded ({type(exc).__name__}: {exc}); report this message"
        return Decoded(letters=[_letter(ctx, station_id, reason[:2000], raw)])


# -- the plain path ------------------------------------------------------------------------
#
# Decoding dominates the ingest of batches (docs/benchmarks.md). msgspec decodes a message
# and checks every field's type and bounds in C (the rules are read from WireReading, so the
# two cannot drift apart); what is left per item is the time, the unit and the clock, checked
# by hand, and a ReadingRow, not a model. The checks are those of WireReading,
# radmon.times.parse_time, radmon.models.to_reading, Reading and _checked; an item that fails
# any of them, however slightly, sends the whole message to the careful path, which then says
# why. tests/ingest/test_payloads.py holds the two paths to the same answers.

_ZULU = ("Z", "z")
_fromisoformat = datetime.fromisoformat
_fromtimestamp = datetime.fromtimestamp
_FINITE = sys.float_info.max


def _wire_struct() -> type[msgspec.Struct]:
    """WireReading as a msgspec Struct: the same fields, types and bounds, and every float
    finite (WireReading's floats all refuse infinities; JSON has no NaN)."""
    fields = []
    for name, info in WireReading.model_fields.items():
        given = get_args(info.annotation) or (info.annotation,)
        kinds = [a for a in given if a is not type(None)]
        if name == "time":
            fields.append((name, str | float))
            continue
        (kind,) = kinds
        rules = list(info.metadata)  # a required field's; an optional one's are in its type
        if get_origin(kind) is Annotated:
            kind, inner = get_args(kind)
            rules += inner.metadata
        bounds = {
            key: getattr(rule, key)
            for rule in rules
            for key in ("ge", "gt", "le")
            if isinstance(rule, getattr(annotated_types, key.capitalize()))
        }
        if kind is float:
            if "gt" not in bounds:
                bounds.setdefault("ge", -_FINITE)
            bounds.setdefault("le", _FINITE)
        typed = Annotated[kind, msgspec.Meta(**bounds)] if bounds else kind
        if info.is_required():
            fields.append((name, typed))
        else:
            fields.append((name, typed | None, None))
    return msgspec.defstruct("Wire", fields, forbid_unknown_fields=True, kw_only=True)


_Wire = _wire_struct()
_decode_wire = msgspec.json.Decoder(list[_Wire] | _Wire).decode  # type: ignore[valid-type]


def _plain(raw: bytes, station: Station, ctx: Context) -> list[ReadingRow] | None:
    """The readings of *raw* if every item is plainly valid, else None (the careful path)."""
    try:
        items = _decode_wire(raw)
    except msgspec.DecodeError:  # also its ValidationError
        return None
    if type(items) is not list:
        items = [items]
    station_id = station.station_id  # a Station's id passed the same pattern as a Reading's
    zone_name = station.timezone
    received = ctx.received_at
    skew = ctx.limits.max_future_skew_s
    try:  # readings up to this time cannot be too far ahead, rounding included
        surely_in_time = received + timedelta(seconds=skew) - timedelta(milliseconds=1)
    except OverflowError:
        surely_in_time = received
    sensitivity = station.sensitivity_cps_per_usv_h
    rows: list[ReadingRow] = []
    append = rows.append
    for item in items:
        if item.station_id is not None and item.station_id != station_id:
            return None
        # time: as parse_time, for str (ISO 8601) or a number (Unix seconds)
        when = item.time
        if type(when) is str:
            text = when.strip()
            if text.endswith(_ZULU):
                text = text[:-1] + "+00:00"
            try:
                moment = _fromisoformat(text)
            except ValueError:
                return None
            if moment.tzinfo is None or moment.utcoffset() is None:
                if not zone_name:
                    return None
                try:
                    moment = moment.replace(tzinfo=zone(zone_name))
                except InputError:
                    return None
            try:
                moment = moment.astimezone(UTC)
            except OverflowError:
                return None
        else:
            try:
                moment = _fromtimestamp(when, tz=UTC)
            except (OverflowError, OSError, ValueError):
                return None
        if not EARLIEST <= moment < LATEST:
            return None
        if moment > surely_in_time and (moment - received).total_seconds() > skew:
            return None
        factor = _FACTORS.get((item.unit, sensitivity))
        if factor is None:
            factor = _factor(item.unit, sensitivity)
            if factor is None:
                return None
        value = item.dose_rate * factor
        if not value <= MAX_PLAUSIBLE_NSV_H:  # also infinity
            return None
        uncertainty = item.uncertainty
        if uncertainty is not None:
            uncertainty *= factor
            if not math.isfinite(uncertainty):
                return None
        append(
            _row(
                (
                    station_id,
                    moment,
                    value,
                    uncertainty,
                    item.counts,
                    item.interval_s,
                    item.precip_mm_h,
                    item.battery_v,
                    item.temperature_c,
                    item.status,
                    item.lat,
                    item.lon,
                    item.altitude_m,
                )
            )
        )
    return rows


_row = partial(tuple.__new__, ReadingRow)  # a ReadingRow without a Python-level call


# factor_to_nsv_h depends on nothing but the unit and the probe's sensitivity
_FACTORS: dict[tuple[str, float | None], float] = {}


def _factor(unit: str, sensitivity: float | None) -> float | None:
    try:
        factor = float(factor_to_nsv_h(unit, sensitivity))
    except InputError:
        return None
    if len(_FACTORS) < 10_000:  # spelled units and sensitivities: a handful in practice
        _FACTORS[unit, sensitivity] = factor
    return factor


# -- the careful path ----------------------------------------------------------------------


def _careful(raw: bytes, station_id: str, station: Station | None, ctx: Context) -> Decoded:
    out = Decoded()
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        out.letters.append(_letter(ctx, station_id, f"malformed JSON: {exc}", raw))
        return out
    except RecursionError:
        reason = "malformed JSON: nested too deeply (a reading is an object, a batch an array)"
        out.letters.append(_letter(ctx, station_id, reason, raw))
        return out
    if isinstance(document, dict):
        items, batch = [document], False
    elif isinstance(document, list):
        items, batch = document, True
    else:
        reason = f"payload is a JSON {type(document).__name__}, not an object or an array"
        out.letters.append(_letter(ctx, station_id, reason, raw))
        return out
    for index, item in enumerate(items):
        try:
            if station is None:
                raise InputError(
                    f"unknown station {station_id!r}: register it first "
                    "('radmon stations import FILE.csv')"
                )
            out.readings.append(reading_row(_checked(parse_wire(item), station, ctx)))
        except InputError as exc:
            if isinstance(exc, AheadOfClock):
                out.ahead.append(reading_row(exc.reading))
            where = f"item {index}: " if batch else ""
            reason = f"{where}{exc}"
            if batch:
                out.letters.append(_letter(ctx, station_id, reason, raw, index, _dump(item)))
            else:
                out.letters.append(_letter(ctx, station_id, reason, raw))
    return out


def _checked(
    wire: WireReading, station: Station, ctx: Context, factor: float | None = None
) -> Reading:
    """*wire* converted, after the checks that depend on the channel and the clock."""
    if wire.station_id is not None and wire.station_id != station.station_id:
        raise InputError(
            f"station_id {wire.station_id!r} does not match the channel's station "
            f"{station.station_id!r}"
        )
    reading = to_reading(wire, station, factor)
    if problem := too_far_ahead(reading.time, ctx.received_at, ctx.limits.max_future_skew_s):
        raise AheadOfClock(f"time {problem}", reading)
    return reading


class AheadOfClock(InputError):
    """A reading refused for a time too far ahead of the clock, which it carries."""

    def __init__(self, message: str, reading: Reading) -> None:
        super().__init__(message)
        self.reading = reading


def too_far_ahead(moment: datetime, now: datetime, skew_s: float) -> str | None:
    """Why *moment* cannot be a reading at *now* (ahead of the clock by more than *skew_s*),
    or None; MQTT, HTTP and the file importers refuse it in these words."""
    ahead = (moment - now).total_seconds()
    if ahead <= skew_s:
        return None
    return (
        f"{moment.isoformat()} is {ahead:.1f} s ahead of the server clock "
        f"(limit {skew_s:.0f} s, ingest.max_future_skew_s): check the clock that stamped it "
        "and its time zone"
    )


def oversized(raw: bytes, station_id: str, ctx: Context, size: int | None = None) -> DeadLetter:
    """The refusal of a payload over ``ingest.max_payload_bytes``: *raw* is all of it, or
    its start when the rest was never read (*size* None: not known)."""
    limit = ctx.limits.max_payload_bytes
    told = f"{size} bytes" if size is not None else f"more than {limit} bytes"
    reason = (
        f"payload of {told} exceeds the limit of {limit} (ingest.max_payload_bytes): "
        "send smaller batches"
    )
    return _letter(ctx, station_id, reason, raw)


def _letter(
    ctx: Context,
    station_id: str | None,
    reason: str,
    raw: bytes,
    index: int | None = None,
    shown: str | None = None,
) -> DeadLetter:
    """A refusal of *raw* (or of its item *index*, *shown* as its own JSON).

    The message's digest identifies it: a redelivery is kept once, while two messages that
    happen to carry the same bad item are two letters.
    """
    origin = ctx.origin if index is None else f"{ctx.origin}[{index}]"
    key = hashlib.sha256(raw).hexdigest()
    return DeadLetter(
        received_at=ctx.received_at,
        source=ctx.source,
        origin=origin,
        station_id=station_id,
        reason=reason,
        payload=_text(raw) if shown is None else shown,
        key=key if index is None else f"{key}[{index}]",
    )


def _text(raw: bytes) -> str:
    return raw[:DEAD_LETTER_MAX_PAYLOAD].decode("utf-8", "replace")


def _dump(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False, default=str)[:DEAD_LETTER_MAX_PAYLOAD]
