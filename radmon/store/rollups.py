"""Hourly and daily rollups kept by the store where TimescaleDB is absent.

They are fed only from the rows an insert actually added, so storing a reading twice never
counts it twice. The daily bucket is the office's local day (``site.timezone``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import lru_cache

from sqlalchemy import Connection, text

from radmon import times

ROLLUP_TABLES = ("readings_hourly", "readings_daily")


def upsert_sql(table: str, source: str, bucket_expr: str, dialect: str) -> str:
    """SQL that adds the aggregates of *source* (rows just inserted) into rollup *table*."""
    least, greatest = ("least", "greatest") if dialect == "postgresql" else ("min", "max")
    return f"""
        INSERT INTO {table} (station_id, bucket, n, sum_nsv_h, min_nsv_h, max_nsv_h)
        SELECT station_id, {bucket_expr}, count(*), sum(dose_rate_nsv_h),
               min(dose_rate_nsv_h), max(dose_rate_nsv_h)
        FROM {source} WHERE true
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (station_id, bucket) DO UPDATE SET
            n = {table}.n + excluded.n,
            sum_nsv_h = {table}.sum_nsv_h + excluded.sum_nsv_h,
            min_nsv_h = {least}({table}.min_nsv_h, excluded.min_nsv_h),
            max_nsv_h = {greatest}({table}.max_nsv_h, excluded.max_nsv_h)
    """


def hour_bucket(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@lru_cache(maxsize=4096)
def _local_midnight_utc(day: date, zone_name: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=times.zone(zone_name)).astimezone(UTC)


def day_bucket(moment: datetime, zone_name: str) -> datetime:
    """The UTC instant at which *moment*'s local day (in *zone_name*) began."""
    return _local_midnight_utc(moment.astimezone(times.zone(zone_name)).date(), zone_name)


def rebuild_daily(conn: Connection, zone_name: str) -> None:
    """Recompute ``readings_daily`` from the raw readings (after the office zone changed)."""
    conn.execute(text("DELETE FROM readings_daily"))
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                upsert_sql(
                    "readings_daily", "readings", "date_trunc('day', time, :zone)", "postgresql"
                )
            ),
            {"zone": zone_name},
        )
        return
    rows = conn.execute(text("SELECT station_id, time, dose_rate_nsv_h FROM readings"))
    totals: dict[tuple[str, str], list[float]] = {}
    for station_id, stamp, dose in rows:
        moment = datetime.fromisoformat(stamp).replace(tzinfo=UTC)
        key = (station_id, sqlite_text(day_bucket(moment, zone_name)))
        agg = totals.get(key)
        if agg is None:
            totals[key] = [1, dose, dose, dose]
        else:
            agg[0] += 1
            agg[1] += dose
            agg[2] = min(agg[2], dose)
            agg[3] = max(agg[3], dose)
    _insert_sqlite_rollup(conn, "readings_daily", totals.items())


def _insert_sqlite_rollup(
    conn: Connection, table: str, items: Iterable[tuple[tuple[str, str], list[float]]]
) -> None:
    params = [(sid, bucket, int(a[0]), a[1], a[2], a[3]) for (sid, bucket), a in items]
    if params:
        conn.exec_driver_sql(
            f"INSERT INTO {table} (station_id, bucket, n, sum_nsv_h, min_nsv_h, max_nsv_h) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            params,
        )


def sqlite_text(moment: datetime) -> str:
    """The UTC text form SQLAlchemy's SQLite DateTime uses, so raw and ORM rows compare."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
