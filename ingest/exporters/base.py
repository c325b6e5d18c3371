"""What every exporter shares: the stations and period asked for, read in bounded windows.

``Store.readings`` returns one station's period as a list; reading a year of a thousand stations
at once would not fit, so exporters walk each station's period in windows of a few days.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO, TypeVar

from radmon.errors import InputError
from radmon.models import Reading, Station
from radmon.store import Store

WINDOW = timedelta(days=7)
T = TypeVar("T")


@dataclass
class ExportReport:
    """What an export wrote."""

    format: str
    readings: int = 0
    stations: int = 0  # stations that had at least one reading in the period


@dataclass(frozen=True)
class ExportRequest:
    """The checked arguments of one export."""

    store: Store
    stations: list[Station]
    start: datetime
    end: datetime
    options: Mapping[str, Any]


Writer = Callable[[ExportRequest, TextIO], ExportReport]


@dataclass(frozen=True)
class Exporter:
    """One output format: its name, what it writes, and the options it accepts."""

    name: str
    description: str
    write: Writer
    options: frozenset[str] = frozenset()


def period(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) in UTC; naive or empty periods are refused."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InputError("the export period needs times with a zone (e.g. 2026-01-01T00:00Z)")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if start >= end:
        raise InputError(f"the export period is empty: start {start} is not before end {end}")
    return start, end


def select_stations(store: Store, wanted: Sequence[str] | None) -> list[Station]:
    """The stations asked for (all when None), in the order given; unknown ids are refused."""
    known = {s.station_id: s for s in store.stations()}
    if wanted is None:
        return list(known.values())
    missing = [sid for sid in wanted if sid not in known]
    if missing:
        raise InputError(f"unknown station(s): {', '.join(missing)}")
    return [known[sid] for sid in dict.fromkeys(wanted)]


def leaping(
    store: Store,
    station_ids: Sequence[str],
    start: datetime,
    end: datetime,
    size: timedelta,
    read: Callable[[datetime, datetime], T],
) -> Iterator[T]:
    """``read(a, b)`` for consecutive windows [a, b) of [start, end), one in memory at a time;
    after a window that read nothing the next starts at the next reading of *station_ids*
    (a thousand-year period holding a few readings took 42 s of empty windows)."""
    at = start
    while at < end:
        b = min(at + size, end)
        got = read(at, b)
        yield got
        at = b if got else (store.first_reading_time(station_ids, b, end) or end)


def station_readings(
    store: Store, station_id: str, start: datetime, end: datetime, size: timedelta = WINDOW
) -> Iterator[Reading]:
    """A station's readings in [start, end), oldest first, one window in memory at a time."""
    for batch in leaping(
        store, [station_id], start, end, size, lambda a, b: store.readings(station_id, a, b)
    ):
        yield from batch


def utc_text(moment: datetime) -> str:
    """ISO 8601 in UTC with ``Z``; fractions of a second only when there are some."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"
