"""Reading messages (MQTT and HTTP push, CONTRACTS) decoded once: readings and dead letters.

Everything refused becomes a DeadLetter with a reason a person can act on; one bad item of a
batch never costs the good ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

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
)
from radmon.units import factor_to_nsv_h


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


_WIRE = TypeAdapter(WireReading | list[WireReading])


def decode_message(
    raw: bytes, station_id: str, stations: StationDirectory, ctx: Context
) -> Decoded:
    """Decode one message whose channel (topic or token) names *station_id*.

    The common case, a well-formed message of a known station, is validated in one pass by
    pydantic-core straight from the bytes; any problem sends the message through the careful
    path that judges item by item and keeps each refusal with its raw payload.
    """
    if len(raw) > ctx.limits.max_payload_bytes:
        reason = (
            f"payload of {len(raw)} bytes exceeds the limit of {ctx.limits.max_payload_bytes} "
            "(ingest.max_payload_bytes): send smaller batches"
        )
        return Decoded(letters=[_letter(ctx, station_id, reason, raw)])
    station = stations.get(station_id)
    if station is not None:
        try:
            return Decoded(readings=_fast(_WIRE.validate_json(raw), station, ctx))
        except (ValidationError, InputError):
            pass
    return _careful(raw, station_id, station, ctx)


def _fast(wires: WireReading | list[WireReading], station: Station, ctx: Context) -> list[Reading]:
    items = wires if isinstance(wires, list) else [wires]
    factors: dict[str, float] = {}
    readings = []
    for wire in items:
        factor = factors.get(wire.unit)
        if factor is None:
            factor = factors[wire.unit] = factor_to_nsv_h(
                wire.unit, station.sensitivity_cps_per_usv_h
            )
        readings.append(_checked(wire, station, ctx, factor))
    return readings


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
