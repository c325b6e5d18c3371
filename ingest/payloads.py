"""Reading messages (MQTT and HTTP push, CONTRACTS) decoded once: readings and dead letters.

Everything refused becomes a DeadLetter with a reason a person can act on; one bad item of a
batch never costs the good ones.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, get_args, get_origin

import annotated_types
from pydantic import ValidationError
from pydantic_core import from_json

from ingest.stations import StationDirectory
from radmon.config import IngestSettings
from radmon.errors import InputError
from radmon.models import (
    DEAD_LETTER_MAX_PAYLOAD,
    DeadLetter,
    Reading,
    Station,
    WireReading,
    parse_wire,
    to_reading,
    trusted,
)
from radmon.times import zone
from radmon.units import MAX_PLAUSIBLE_NSV_H, factor_to_nsv_h


@dataclass(slots=True)
class Decoded:
    readings: list[Reading] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)

    def extend(self, other: Decoded) -> None:
        self.readings.extend(other.readings)
        self.letters.extend(other.letters)


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
        reason = (
            f"payload of {len(raw)} bytes exceeds the limit of {ctx.limits.max_payload_bytes} "
            "(ingest.max_payload_bytes): send smaller batches"
        )
        return Decoded(letters=[_letter(ctx, station_id, reason, raw)])
    station = stations.get(station_id)
    if station is not None:
        readings = _plain(raw, station, ctx)
        if readings is not None:
            return Decoded(readings=readings)
    return _careful(raw, station_id, station, ctx)


# -- the plain path ------------------------------------------------------------------------
#
# Decoding dominates the ingest of batches (docs/benchmarks.md): validating each item into a
# WireReading, then each Reading again, cost some 5 µs a reading. Here an item with only the
# three required fields is checked by hand, its unit converted once per message, and its
# Reading built without validating again what was just checked. The checks are those of
# WireReading, radmon.times.parse_time, radmon.models.to_reading, Reading and _checked; an
# item that fails any of them, however slightly, sends the whole message to the careful path,
# which then says why. tests/ingest/test_payloads.py holds the two paths to the same answers.

_PLAIN_KEYS = frozenset(("time", "dose_rate", "unit"))
_ZULU = ("Z", "z")
_fromisoformat = datetime.fromisoformat
_fromtimestamp = datetime.fromtimestamp


def _plain(raw: bytes, station: Station, ctx: Context) -> list[Reading] | None:
    """The readings of *raw* if every item is plainly valid, else None (the careful path)."""
    try:
        document = from_json(raw)  # refuses a little more than json.loads: never less
    except ValueError:
        return None
    kind = type(document)
    if kind is list:
        items = document
    elif kind is dict:
        items = [document]
    else:
        return None
    station_id = station.station_id  # a Station's id passed the same pattern as a Reading's
    zone_name = station.timezone
    received = ctx.received_at
    skew = ctx.limits.max_future_skew_s
    try:  # readings up to this time cannot be too far ahead, rounding included
        surely_in_time = received + timedelta(seconds=skew) - timedelta(milliseconds=1)
    except OverflowError:
        surely_in_time = received
    sensitivity = station.sensitivity_cps_per_usv_h
    readings: list[Reading] = []
    append = readings.append
    for item in items:
        if type(item) is not dict:
            return None
        extras = None
        if item.keys() != _PLAIN_KEYS:
            if not (_PLAIN_KEYS <= item.keys() <= _KNOWN_KEYS):
                try:  # a field the plain path does not know: validated as the careful path does
                    append(_checked(parse_wire(item), station, ctx))
                except (InputError, ValidationError):
                    return None
                continue
            extras = item
        # time: as parse_time, for str (ISO 8601) or int/float (Unix seconds), never bool
        when = item["time"]
        kind = type(when)
        if kind is str:
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
            moment = moment.astimezone(UTC)
        elif kind is float or kind is int:
            try:
                moment = _fromtimestamp(float(when), tz=UTC)
            except (OverflowError, OSError, ValueError):  # also NaN and infinities
                return None
        else:
            return None
        if moment > surely_in_time and (moment - received).total_seconds() > skew:
            return None
        # dose_rate: a non-negative finite number (int or float, never bool), within range
        dose = _as_float(item["dose_rate"])
        if dose is None or not dose >= 0.0:  # also NaN
            return None
        unit = item["unit"]
        if type(unit) is not str:
            return None
        factor = _FACTORS.get((unit, sensitivity))
        if factor is None:
            factor = _factor(unit, sensitivity)
            if factor is None:
                return None
        value = dose * factor
        if not value <= MAX_PLAUSIBLE_NSV_H:  # also infinity
            return None
        fields = _NO_FIELDS if extras is None else _optional(extras, station_id, factor)
        if fields is None:
            return None
        append(
            trusted(Reading, station_id=station_id, time=moment, dose_rate_nsv_h=value, **fields)
        )
    return readings


def _field_rule(name: str) -> tuple[str, type, float, float, bool]:
    """How the plain path checks the optional wire field *name*: (stored as, int or float,
    low, high, low excluded), read from WireReading so that the two cannot drift apart."""
    given = get_args(WireReading.model_fields[name].annotation)
    annotation = next(a for a in given if a is not type(None))
    kind, low, high, above = annotation, -math.inf, math.inf, False
    if get_origin(annotation) is Annotated:
        kind, info = get_args(annotation)
        for rule in info.metadata:
            if isinstance(rule, annotated_types.Ge):
                low = rule.ge
            elif isinstance(rule, annotated_types.Gt):
                low, above = rule.gt, True
            elif isinstance(rule, annotated_types.Le):
                high = rule.le
    return ("uncertainty_nsv_h" if name == "uncertainty" else name), kind, low, high, above


_OPTIONAL = {
    name: _field_rule(name) for name in WireReading.model_fields if name not in _PLAIN_KEYS
}
_OPTIONAL["station_id"] = ("station_id", str, 0.0, 0.0, False)  # must name the channel's
_KNOWN_KEYS = _PLAIN_KEYS | _OPTIONAL.keys()
_NO_FIELDS: dict[str, Any] = {}


def _optional(item: dict[str, Any], station_id: str, factor: float) -> dict[str, Any] | None:
    """The optional fields of a plain *item* as its Reading stores them, None for a doubt."""
    fields: dict[str, Any] = {}
    for name, given in item.items():
        rule = _OPTIONAL.get(name)
        if rule is None or given is None:  # a required field, or an optional one left empty
            continue
        stored, kind, low, high, above = rule
        if kind is str:
            if given != station_id:
                return None
            continue
        if kind is int:
            if type(given) is not int or given < low:  # never bool
                return None
            fields[stored] = given
            continue
        given = _as_float(given)
        if given is None:
            return None
        if not (given > low if above else given >= low) or not given <= high:  # also NaN
            return None
        if name == "uncertainty":
            given *= factor
        if not math.isfinite(given):
            return None
        fields[stored] = given
    return fields


def _as_float(value: object) -> float | None:
    """A JSON number as WireReading's strict float takes it (an int, never a bool)."""
    kind = type(value)
    if kind is float:
        return value  # type: ignore[return-value]
    if kind is int:
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:
            return None
    return None


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
            out.readings.append(_checked(parse_wire(item), station, ctx))
        except InputError as exc:
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
    ahead = (reading.time - ctx.received_at).total_seconds()
    if ahead > ctx.limits.max_future_skew_s:
        raise InputError(
            f"time {reading.time.isoformat()} is {ahead:.0f} s ahead of the server clock "
            f"(limit {ctx.limits.max_future_skew_s:.0f} s, ingest.max_future_skew_s): "
            "check the probe's clock and its time zone"
        )
    return reading


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
