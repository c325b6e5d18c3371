"""Query periods: ISO 8601 instants with a zone, defaulting to the last 24 hours.

A time without a zone is refused rather than guessed: in UTC+7 a guess is a silent 7-hour shift.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi import HTTPException

from radmon.errors import InputError
from radmon.times import in_range_utc

DEFAULT_SPAN = timedelta(hours=24)

# An unencoded '+' in a query string arrives as a space: '…T10:00:00 07:00' meant '+07:00'.
_SPACE_FOR_PLUS = re.compile(r"^(.*\d) (\d{2}(?::?\d{2})?)$")


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status_code=422, detail=message)


def parse_instant(name: str, value: str) -> datetime:
    """Parse the query parameter *name*; 422 with the reason when it is not a zoned ISO time."""
    text = _SPACE_FOR_PLUS.sub(r"\1+\2", value.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _unprocessable(
            f"{name}={value!r} is not an ISO 8601 time (e.g. 2026-11-21T10:00:00+07:00)"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _unprocessable(
            f"{name}={value!r} has no time zone; add one, e.g. 'Z' or '+07:00' (%2B07:00 in a URL)"
        )
    try:
        return in_range_utc(moment, f"{name}={value!r}")
    except InputError as exc:
        raise _unprocessable(str(exc)) from None


def period(
    start: str | None, end: str | None, max_span: timedelta | None = None, hint: str = ""
) -> tuple[datetime, datetime]:
    """The [start, end) asked for; end defaults to now and start to 24 hours before end."""
    end_at = parse_instant("end", end) if end else datetime.now(UTC)
    start_at = parse_instant("start", start) if start else end_at - DEFAULT_SPAN
    if end_at <= start_at:
        raise _unprocessable(
            f"end ({end_at.isoformat()}) must be after start ({start_at.isoformat()})"
        )
    if max_span is not None and end_at - start_at > max_span:
        raise _unprocessable(f"the period is longer than {max_span.days} days{hint}")
    return start_at, end_at
