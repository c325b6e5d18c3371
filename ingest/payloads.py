"""Reading messages (MQTT and HTTP push, CONTRACTS) decoded once: readings and dead letters.

Everything refused becomes a DeadLetter with a reason a person can act on; one bad item of a
batch never costs the good ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.stations import StationDirectory
from radmon.config import IngestSettings
from radmon.errors import InputError
from radmon.models import DEAD_LETTER_MAX_PAYLOAD, DeadLetter, Reading, Station, parse_reading


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
    """Decode one message whose channel (topic or token) names *station_id*."""
    out = Decoded()
    if len(raw) > ctx.limits.max_payload_bytes:
        reason = (
            f"payload of {len(raw)} bytes exceeds the limit of {ctx.limits.max_payload_bytes} "
            "(ingest.max_payload_bytes): send smaller batches"
        )
        out.letters.append(_letter(ctx, station_id, reason, _text(raw)))
        return out
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        out.letters.append(_letter(ctx, station_id, f"malformed JSON: {exc}", _text(raw)))
        return out
    if isinstance(document, dict):
        items, batch = [document], False
    elif isinstance(document, list):
        items, batch = document, True
    else:
        reason = f"payload is a JSON {type(document).__name__}, not an object or an array"
        out.letters.append(_letter(ctx, station_id, reason, _text(raw)))
        return out
    station = stations.get(station_id)
    for index, item in enumerate(items):
        try:
            if station is None:
                raise InputError(
                    f"unknown station {station_id!r}: register it first "
                    "('radmon stations import FILE.csv')"
                )
            out.readings.append(_reading(item, station_id, station, ctx))
        except InputError as exc:
            where = f"item {index}: " if batch else ""
            shown = _dump(item) if batch else _text(raw)
            out.letters.append(
                _letter(ctx, station_id, f"{where}{exc}", shown, index if batch else None)
            )
    return out


def _reading(item: Any, station_id: str, station: Station, ctx: Context) -> Reading:
    if isinstance(item, dict):
        claimed = item.get("station_id", station_id)
        if claimed != station_id:
            raise InputError(
                f"station_id {claimed!r} does not match the channel's station {station_id!r}"
            )
    reading = parse_reading(item, station)
    ahead = (reading.time - ctx.received_at).total_seconds()
    if ahead > ctx.limits.max_future_skew_s:
        raise InputError(
            f"time {reading.time.isoformat()} is {ahead:.0f} s ahead of the server clock "
            f"(limit {ctx.limits.max_future_skew_s:.0f} s, ingest.max_future_skew_s): "
            "check the probe's clock and its time zone"
        )
    return reading


def _letter(
    ctx: Context, station_id: str | None, reason: str, payload: str, index: int | None = None
) -> DeadLetter:
    origin = ctx.origin if index is None else f"{ctx.origin}[{index}]"
    return DeadLetter(
        received_at=ctx.received_at,
        source=ctx.source,
        origin=origin,
        station_id=station_id,
        reason=reason,
        payload=payload,
    )


def _text(raw: bytes) -> str:
    return raw[:DEAD_LETTER_MAX_PAYLOAD].decode("utf-8", "replace")


def _dump(item: Any) -> str:
    return json.dumps(item, ensure_ascii=False, default=str)[:DEAD_LETTER_MAX_PAYLOAD]
