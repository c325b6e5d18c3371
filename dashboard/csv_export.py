"""CSV answers of the API (``format=csv``): readings, alarms and statistics as files to download.

Station names come from devices and imported files, and these files are opened in spreadsheets:
a text cell that starts like a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return) gets
a leading ``'`` so the spreadsheet shows it as text instead of running it (OWASP, "CSV
injection"). Numbers are written as Python's shortest exact text, so they read back equal to
the JSON; times are UTC with ``Z``, as in the detection files (CONTRACTS).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import Response

from dashboard.http_cache import conditional
from detectors.frames import ALARM_COLUMNS as CONTRACT_ALARM_COLUMNS
from ingest.exporters.base import utc_text
from radmon.models import Alarm, Resolution, SeriesPoint, StationStats

CSV = "text/csv"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"

# The detection files' alarm columns (CONTRACTS) first, then what the store knows besides.
ALARM_COLUMNS = (
    *CONTRACT_ALARM_COLUMNS,
    "id",
    "state",
    "station_name",
    "updated_at",
    "cleared_at",
    "cleared_by",
    "acked_by",
    "acked_at",
    "raised_at",
    "details",
)
RAW_COLUMNS = ("time", "station_id", "dose_rate_nsv_h")
SERIES_COLUMNS = ("time", "station_id", "mean_nsv_h", "min_nsv_h", "max_nsv_h", "count")
STATS_COLUMNS = (
    "station_id",
    "name",
    "count",
    "mean_nsv_h",
    "min_nsv_h",
    "max_nsv_h",
    "expected",
    "availability_pct",
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def text_cell(value: str) -> str:
    """*value* as a spreadsheet shows it, never as a formula it would run."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, dict):
        return text_cell(json.dumps(value, ensure_ascii=False, sort_keys=True))
    return text_cell(str(value))


def encode(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A CSV file (RFC 4180, UTF-8) with a header; every cell through the formula guard."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue().encode()


def filename(*parts: str) -> str:
    """A download name from *parts*, safe in a header and on any file system."""
    stem = "-".join(_UNSAFE_IN_FILENAME.sub("_", part).strip("_") for part in parts if part)
    return f"{stem or 'radmon'}.csv"


def compact(moment: datetime) -> str:
    """A time for a file name: 20260110T000000Z."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def attachment(body: bytes, name: str, headers: Mapping[str, str] | None = None) -> Response:
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type=CSV_MEDIA_TYPE, headers={**(headers or {}), **disposition})


def conditional_attachment(
    body: bytes, name: str, if_none_match: str | None, headers: Mapping[str, str] | None = None
) -> Response:
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return conditional(body, CSV_MEDIA_TYPE, if_none_match, {**(headers or {}), **disposition})


def series_rows(
    station_id: str, resolution: Resolution, points: Sequence[SeriesPoint]
) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
    """Raw readings as the detection input (time,station_id,dose_rate_nsv_h), rollups whole."""
    if resolution is Resolution.RAW:
        return RAW_COLUMNS, [(p.time, station_id, p.mean_nsv_h) for p in points]
    rows = [(p.time, station_id, p.mean_nsv_h, p.min_nsv_h, p.max_nsv_h, p.count) for p in points]
    return SERIES_COLUMNS, rows


def _alarm_end(alarm: Alarm) -> datetime | None:
    """The detection files' ``end``: the last reading still in alarm; none while it is open."""
    if alarm.state.is_open:
        return None
    last = alarm.details.get("last_abnormal_at")
    if isinstance(last, str):
        try:
            moment = datetime.fromisoformat(last.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment
    return alarm.updated_at or alarm.cleared_at


def alarm_rows(alarms: Sequence[Alarm], names: Mapping[str, str]) -> list[tuple[Any, ...]]:
    return [
        (
            a.station_id,
            a.opened_at,
            _alarm_end(a),
            a.kind,
            a.category.value,
            a.severity.value,
            a.peak_nsv_h,
            a.baseline_nsv_h,
            a.id,
            a.state.value,
            names.get(a.station_id),
            a.updated_at,
            a.cleared_at,
            a.cleared_by,
            a.acked_by,
            a.acked_at,
            a.raised_at,
            a.details,
        )
        for a in alarms
    ]


def stats_rows(stats: Sequence[StationStats], names: Mapping[str, str]) -> list[tuple[Any, ...]]:
    return [
        (
            s.station_id,
            names.get(s.station_id),
            s.count,
            s.mean_nsv_h,
            s.min_nsv_h,
            s.max_nsv_h,
            s.expected,
            s.availability_pct,
        )
        for s in stats
    ]
