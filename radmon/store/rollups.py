"""Hourly and daily rollups kept by the store where TimescaleDB is absent.

On plain PostgreSQL they work like continuous aggregates: a write only marks the hours it
touched (``rollup_dirty``), :func:`refresh` recomputes marked hours from ``readings`` (replacing,
so storing a reading twice never counts it twice) and reads answer still-marked hours from raw
readings. SQLite has no index on time, so recomputing an hour would scan the whole table: there
the writer merges the rows it added, aggregated once per batch on the client. The daily bucket
is the office's local day (``site.timezone``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union_all,
)

from radmon import times
from radmon.store.schema import (
    UTCDateTime,
    readings,
    readings_daily,
    readings_hourly,
    rollup_dirty,
    stations,
)

# (station_id, time, dose_rate_nsv_h, precip_mm_h) of a newly stored reading
NewRow = tuple[str, datetime, float, float | None]
# (station_id, bucket) -> [n, sum, min, max, rain_n, rain_sum (None while rain_n is 0)]
Aggregates = dict[tuple[str, datetime], list[Any]]
ROLLUP_COLUMNS = "station_id, bucket, n, sum_nsv_h, min_nsv_h, max_nsv_h, rain_n, rain_sum_mm_h"
_ROLLUP_NAMES = ROLLUP_COLUMNS.split(", ")
_TABLES = ("readings_hourly", "readings_daily")
HOUR = timedelta(hours=1)
# One refresher at a time (pg_advisory_xact_lock): two would overwrite each other's rows.
_REFRESH_LOCK = 0x726F6C6C757073  # "rollups"
Span = tuple[datetime, datetime]


def hour_bucket(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@lru_cache(maxsize=4096)
def _local_midnight_utc(day: date, zone_name: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=times.zone(zone_name)).astimezone(UTC)


def day_bucket(moment: datetime, zone_name: str) -> datetime:
    """The UTC instant at which *moment*'s local day (in *zone_name*) began."""
    return _local_midnight_utc(moment.astimezone(times.zone(zone_name)).date(), zone_name)


def day_end(day: datetime, zone_name: str) -> datetime:
    """The UTC instant at which the local day that began at *day* ends (23–25 hours later)."""
    local = day.astimezone(times.zone(zone_name)).date()
    return _local_midnight_utc(local + timedelta(days=1), zone_name)


def days_of_hour(hour: datetime, zone_name: str) -> set[datetime]:
    """The local days an hour overlaps: two where the zone's offset is not whole hours."""
    return {day_bucket(hour, zone_name), day_bucket(hour + HOUR - timedelta.resolution, zone_name)}


def ceil_hour(moment: datetime) -> datetime:
    floor = hour_bucket(moment)
    return floor if floor == moment else floor + HOUR


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Non-empty *spans* sorted and joined where they touch: fewer, larger range scans."""
    merged: list[Span] = []
    for lo, hi in sorted(s for s in spans if s[0] < s[1]):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def in_spans(column: ColumnElement[datetime], spans: Sequence[Span]) -> ColumnElement[bool]:
    """SQL: *column* falls in one of *spans* (half-open)."""
    return or_(*(and_(column >= lo, column < hi) for lo, hi in spans))


def aggregate(rows: Iterable[NewRow], zone_name: str) -> tuple[Aggregates, Aggregates]:
    """Hourly and daily aggregates of *rows*."""
    buckets: dict[datetime, tuple[datetime, datetime]] = {}
    hourly: Aggregates = {}
    daily: Aggregates = {}
    for station_id, moment, dose, rain in rows:
        pair = buckets.get(moment)
        if pair is None:
            pair = buckets[moment] = (hour_bucket(moment), day_bucket(moment, zone_name))
        for table, bucket in ((hourly, pair[0]), (daily, pair[1])):
            agg = table.get((station_id, bucket))
            if agg is None:
                agg = table[(station_id, bucket)] = [1, dose, dose, dose, 0, None]
            else:
                agg[0] += 1
                agg[1] += dose
                if dose < agg[2]:
                    agg[2] = dose
                if dose > agg[3]:
                    agg[3] = dose
            if rain is not None:
                agg[4] += 1
                agg[5] = rain if agg[5] is None else agg[5] + rain
    return hourly, daily


def merge_sql(table: str, source: str, dialect: str) -> str:
    """SQL that adds pre-aggregated rows (*source*: VALUES or SELECT) into rollup *table*."""
    least, greatest = ("least", "greatest") if dialect == "postgresql" else ("min", "max")
    return f"""
        INSERT INTO {table} ({ROLLUP_COLUMNS}) {source}
        ON CONFLICT (station_id, bucket) DO UPDATE SET
            n = {table}.n + excluded.n,
            sum_nsv_h = {table}.sum_nsv_h + excluded.sum_nsv_h,
            min_nsv_h = {least}({table}.min_nsv_h, excluded.min_nsv_h),
            max_nsv_h = {greatest}({table}.max_nsv_h, excluded.max_nsv_h),
            rain_n = {table}.rain_n + excluded.rain_n,
            rain_sum_mm_h = CASE WHEN {table}.rain_n + excluded.rain_n = 0 THEN NULL
                ELSE coalesce({table}.rain_sum_mm_h, 0) + coalesce(excluded.rain_sum_mm_h, 0) END
    """


def merge_sqlite(conn: Connection, hourly: Aggregates, daily: Aggregates) -> None:
    """Merge aggregates into the SQLite rollup tables (buckets as SQLite's UTC text)."""
    sql = {t: merge_sql(t, "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", "sqlite") for t in _TABLES}
    for table, aggs in zip(_TABLES, (hourly, daily), strict=True):
        params = [
            (s, sqlite_text(b), int(a[0]), a[1], a[2], a[3], a[4], a[5])
            for (s, b), a in aggs.items()
        ]
        if params:
            conn.exec_driver_sql(sql[table], params)


def rebuild_daily(conn: Connection, zone_name: str) -> None:
    """Recompute ``readings_daily`` from the raw readings (after the office zone changed)."""
    conn.execute(text("DELETE FROM readings_daily"))
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                f"INSERT INTO readings_daily ({ROLLUP_COLUMNS}) "
                "SELECT station_id, date_trunc('day', time, :zone), count(*), "
                "sum(dose_rate_nsv_h), min(dose_rate_nsv_h), max(dose_rate_nsv_h), "
                "count(precip_mm_h), sum(precip_mm_h) "
                "FROM readings GROUP BY 1, 2"
            ),
            {"zone": zone_name},
        )
        return
    rows = conn.exec_driver_sql(
        "SELECT station_id, time, dose_rate_nsv_h, precip_mm_h FROM readings"
    )
    parsed = ((s, parse_sqlite_text(t), d, rain) for s, t, d, rain in rows)
    _, daily = aggregate(parsed, zone_name)
    merge_sqlite(conn, {}, daily)


def sqlite_text(moment: datetime) -> str:
    """The UTC text form SQLAlchemy's SQLite DateTime uses, so raw and ORM rows compare."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def parse_sqlite_text(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC)


# -- the queue of stale hours (plain PostgreSQL) ----------------------------------------------


def touched_hours(moments: Iterable[datetime]) -> list[datetime]:
    """The distinct UTC hours of *moments* (aware): what one write marks (a batch spans few
    hours). By epoch seconds: a quarter of the cost of truncating every datetime."""
    hours = {m.timestamp() // 3600 for m in moments}
    return [datetime.fromtimestamp(h * 3600, UTC) for h in sorted(hours)]


def dirty_hours(conn: Connection, lo: datetime, hi: datetime) -> list[datetime]:
    """Marked hours in [lo, hi): their rollup rows may be stale, read them from raw readings."""
    d = rollup_dirty.c
    query = select(d.bucket).where(d.bucket >= lo, d.bucket < hi).distinct().order_by(d.bucket)
    return list(conn.execute(query).scalars())


def period_parts(
    start: datetime,
    end: datetime,
    dirty: Sequence[datetime],
    station_ids: Sequence[str] | None = None,
    *,
    registered_only: bool = False,
) -> list[Select[tuple[str, int, float, float, float, int, float | None]]]:
    """Per-station ``(station_id, n, total, low, high, rain_n, rain_total)`` selects that
    together cover [start, end).

    Whole clean hours come from the hourly rollup; the ragged edges and the *dirty* hours from
    raw readings, so the answer is exact whether or not the rollup has been refreshed.
    *registered_only* reads raw readings only of stations in ``stations``, per station.
    """
    first_hour, last_hour = ceil_hour(start), hour_bucket(end)
    if first_hour >= last_hour:
        first_hour = last_hour = end
    stale = [h for h in dirty if first_hour <= h < last_hour]
    spans = merge_spans([(start, first_hour), (last_hour, end), *((h, h + HOUR) for h in stale)])
    h = readings_hourly.c
    rolled = select(
        h.station_id.label("station_id"),
        func.sum(h.n).label("n"),
        func.sum(h.sum_nsv_h).label("total"),
        func.min(h.min_nsv_h).label("low"),
        func.max(h.max_nsv_h).label("high"),
        func.sum(h.rain_n).label("rain_n"),
        func.sum(h.rain_sum_mm_h).label("rain_total"),
    ).where(h.bucket >= first_hour, h.bucket < last_hour)
    if stale:
        rolled = rolled.where(h.bucket.not_in(stale))
    if station_ids is not None:
        rolled = rolled.where(h.station_id.in_(station_ids))
    # An hour-aligned, refreshed period needs no raw readings at all.
    raw = [_raw_part(span, station_ids, registered_only) for span in spans]
    return [rolled.group_by(h.station_id), *raw]


def _raw_part(
    span: Span, station_ids: Sequence[str] | None, registered_only: bool
) -> Select[tuple[str, int, float, float, float, int, float | None]]:
    r = readings.c
    query = select(
        r.station_id.label("station_id"),
        func.count().label("n"),
        func.sum(r.dose_rate_nsv_h).label("total"),
        func.min(r.dose_rate_nsv_h).label("low"),
        func.max(r.dose_rate_nsv_h).label("high"),
        func.count(r.precip_mm_h).label("rain_n"),
        func.sum(r.precip_mm_h).label("rain_total"),
    ).where(r.time >= span[0], r.time < span[1])
    if registered_only:
        # Joined to the stations, a span can be read station by station through the primary
        # key: PostgreSQL does so when rows are clustered by station (a station-by-station
        # import), where the BRIN index on time would match every block; SQLite always does.
        query = query.join_from(readings, stations, stations.c.station_id == r.station_id)
    if station_ids is not None:
        query = query.where(r.station_id.in_(station_ids))
    return query.group_by(r.station_id)


def refresh(conn: Connection, zone_name: str, limit: int | None) -> int:
    """Recompute the oldest *limit* marked hours and their local days; returns hours done.

    Marks are claimed (deleted) before the recompute reads ``readings``: a mark committed
    after the claim survives for the next run, and the rows of every claimed mark were
    committed before the recompute, so none is missed. Runs in the caller's transaction.
    """
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REFRESH_LOCK})
    d = rollup_dirty.c
    oldest = select(d.bucket).distinct().order_by(d.bucket).limit(limit)
    hours = list(conn.execute(oldest).scalars())
    if not hours:
        return 0
    conn.execute(delete(rollup_dirty).where(d.bucket.in_(hours)))
    _recompute_hours(conn, hours)
    days = set().union(*(days_of_hour(hour, zone_name) for hour in hours))
    for day in sorted(days):
        _recompute_day(conn, day, zone_name)
    return len(hours)


def _recompute_hours(conn: Connection, hours: Sequence[datetime]) -> None:
    conn.execute(delete(readings_hourly).where(readings_hourly.c.bucket.in_(hours)))
    r = readings.c
    bucket = func.date_trunc("hour", r.time)  # the store's sessions run in UTC
    query = (
        select(
            r.station_id,
            bucket,
            func.count(),
            func.sum(r.dose_rate_nsv_h),
            func.min(r.dose_rate_nsv_h),
            func.max(r.dose_rate_nsv_h),
            func.count(r.precip_mm_h),
            func.sum(r.precip_mm_h),
        )
        .where(in_spans(r.time, merge_spans((h, h + HOUR) for h in hours)))
        .group_by(r.station_id, bucket)
    )
    conn.execute(insert(readings_hourly).from_select(_ROLLUP_NAMES, query))


def _recompute_day(conn: Connection, day: datetime, zone_name: str) -> None:
    conn.execute(delete(readings_daily).where(readings_daily.c.bucket == day))
    # Its hours were refreshed first; any hour still marked will recompute this day again.
    parts = union_all(*period_parts(day, day_end(day, zone_name), [])).subquery()
    query = select(
        parts.c.station_id,
        literal(day, UTCDateTime),
        func.sum(parts.c.n),
        func.sum(parts.c.total),
        func.min(parts.c.low),
        func.max(parts.c.high),
        func.sum(parts.c.rain_n),
        func.sum(parts.c.rain_total),
    ).group_by(parts.c.station_id)
    conn.execute(insert(readings_daily).from_select(_ROLLUP_NAMES, query))
