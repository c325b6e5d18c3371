"""Timestamps at the edge: aware UTC, or rejected.

A naive timestamp is only accepted when the station's configuration names its zone: guessing
would reproduce the classic silent 7-hour shift of UTC+7 data.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from radmon.errors import InputError


def zone(name: str) -> ZoneInfo:
    """The IANA zone *name*, or an InputError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"time zone {name!r} is not a known IANA zone name") from exc


# Readings outside these years are a broken clock, and the calendar arithmetic of daily
# buckets and periods near datetime's own limits would overflow on them.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


def parse_time(value: object, station_timezone: str | None = None) -> datetime:
    """Parse ISO 8601 text, Unix seconds or a datetime into an aware UTC datetime."""
    if isinstance(value, str):  # the common case first
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InputError(f"time {value!r} is not ISO 8601") from exc
    elif isinstance(value, datetime):
        moment = value
    elif isinstance(value, bool):
        raise InputError(f"time {value!r} is neither ISO 8601 text nor Unix seconds")
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            raise InputError(f"time {value!r} is not a finite number of Unix seconds")
        try:
            moment = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InputError(f"time {value!r} is out of range as Unix seconds") from exc
    else:
        raise InputError(f"time {value!r} is neither ISO 8601 text nor Unix seconds")
    if moment.tzinfo is None or moment.utcoffset() is None:
        if not station_timezone:
            raise InputError(
                f"time {value!r} has no zone; add one (e.g. 'Z' or '+07:00') or set the "
                "station's timezone"
            )
        moment = moment.replace(tzinfo=zone(station_timezone))
    return in_range_utc(moment, f"time {value!r}")


def in_range_utc(moment: datetime, named: str) -> datetime:
    """*moment* (aware) in UTC; InputError, naming it as *named*, outside EARLIEST..LATEST."""
    try:
        moment = moment.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+07:00 has no UTC
        raise InputError(f"{named} is out of range") from exc
    if not EARLIEST <= moment < LATEST:
        raise InputError(
            f"{named} is outside the years {EARLIEST.year}-{LATEST.year - 1}: check the clock "
            "that gave it"
        )
    return moment


def ensure_utc(moment: datetime) -> datetime:
    """Return *moment* in UTC; a naive datetime is a programming error here, not input."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime where an aware one is required")
    return moment.astimezone(UTC)
