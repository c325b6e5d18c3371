"""Hourly and daily rollups kept by the store where TimescaleDB is absent.

They are fed only from the rows an insert actually added, so storing a reading twice never
counts it twice. Aggregation happens once per batch on the client (a batch holds few distinct
times, so buckets are computed per time, not per row); the database merges a handful of rows.
The daily bucket is the office's local day (``site.timezone``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import lru_cache

from sqlalchemy import Connection, text

from radmon import times

# (station_id, time, dose_rate_nsv_h) of a newly stored reading
NewRow = tuple[str, datetime, float]
# (station_id, bucket) -> [n, sum, min, max]
Aggregates = dict[tuple[str, datetime], list[float]]
ROLLUP_COLUMNS = "station_id, bucket, n, sum_nsv_h, min_nsv_h, max_nsv_h"
_TABLES = ("readings_hourly", "readings_daily")


def hour_bucket(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@lru_cache(maxsize=4096)
def _local_midnight_utc(day: date, zone_name: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=times.zone(zone_name)).astimezone(UTC)


def day_bucket(moment: datetime, zone_name: str) -> datetime:
    """The UTC instant at which *moment*'s local day (in *zone_name*) began."""
    return _local_midnight_utc(moment.astimezone(times.zone(zone_name)).date(), zone_name)


def aggregate(rows: Iterable[NewRow], zone_name: str) -> tuple[Aggregates, Aggregates]:
    """Hourly and daily aggregates of *rows*."""
    buckets: dict[datetime, tuple[datetime, datetime]] = {}
    hourly: Aggregates = {}
    daily: Aggregates = {}
    for station_id, moment, dose in rows:
        pair = buckets.get(moment)
        if pair is None:
            pair = buckets[moment] = (hour_bucket(moment), day_bucket(moment, zone_name))
        for table, bucket in ((hourly, pair[0]), (daily, pair[1])):
            agg = table.get((station_id, bucket))
            if agg is None:
                table[(station_id, bucket)] = [1, dose, dose, dose]
            else:
                agg[0] += 1
                agg[1] += dose
                if dose < agg[2]:
                    agg[2] = dose
                if dose > agg[3]:
                    agg[3] = dose
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
            max_nsv_h = {greatest}({table}.max_nsv_h, excluded.max_nsv_h)
    """


def merge_sqlite(conn: Connection, hourly: Aggregates, daily: Aggregates) -> None:
    """Merge aggregates into the SQLite rollup tables (buckets as SQLite's UTC text)."""
    sql = {t: merge_sql(t, "VALUES (?, ?, ?, ?, ?, ?)", "sqlite") for t in _TABLES}
    for table, aggs in zip(_TABLES, (hourly, daily), strict=True):
        params = [(s, sqlite_text(b), int(a[0]), a[1], a[2], a[3]) for (s, b), a in aggs.items()]
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
                "sum(dose_rate_nsv_h), min(dose_rate_nsv_h), max(dose_rate_nsv_h) "
                "FROM readings GROUP BY 1, 2"
            ),
            {"zone": zone_name},
        )
        return
    rows = conn.exec_driver_sql("SELECT station_id, time, dose_rate_nsv_h FROM readings")
    parsed = ((s, parse_sqlite_text(t), d) for s, t, d in rows)
    _, daily = aggregate(parsed, zone_name)
    merge_sqlite(conn, {}, daily)


def sqlite_text(moment: datetime) -> str:
    """The UTC text form SQLAlchemy's SQLite DateTime uses, so raw and ORM rows compare."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def parse_sqlite_text(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC)
