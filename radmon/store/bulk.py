"""Idempotent bulk writes of readings, one implementation per backend.

PostgreSQL: COPY into a per-connection staging table, then one statement inserts with
``ON CONFLICT DO NOTHING`` and feeds the rollups from the rows it really inserted.
SQLite: the same shape with executemany, under the single-writer lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from radmon.models import Reading
from radmon.store import rollups
from radmon.store.schema import READING_COLUMNS

_COLUMNS = ", ".join(READING_COLUMNS)
_PG_TYPES = [
    "text",
    "timestamptz",
    "float8",
    "float8",
    "int4",
    "float8",
    "float8",
    "float8",
    "float8",
    "int4",
]
_STAGE_KEY = "radmon_stage_ready"


def reading_row(r: Reading) -> tuple[Any, ...]:
    """*r* as a tuple in READING_COLUMNS order, as COPY and the staging table take it."""
    return (
        r.station_id,
        r.time,
        r.dose_rate_nsv_h,
        r.uncertainty_nsv_h,
        r.counts,
        r.interval_s,
        r.precip_mm_h,
        r.battery_v,
        r.temperature_c,
        r.status,
    )


def write_postgres(
    conn: Connection, readings: Sequence[Reading], keep_rollups: bool, zone: str
) -> int:
    """Write *readings* in the caller's transaction; returns how many were new."""
    fairy = conn.connection
    driver = fairy.driver_connection
    with driver.cursor() as cur:
        if not fairy.info.get(_STAGE_KEY):
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS _stage (LIKE readings) ON COMMIT DELETE ROWS"
            )
            fairy.info[_STAGE_KEY] = True
        with cur.copy(f"COPY _stage ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_PG_TYPES)
            for reading in readings:
                copy.write_row(reading_row(reading))
        insert = (
            # Key order makes concurrent writers take row locks in one global order: no deadlock.
            f"INSERT INTO readings ({_COLUMNS}) SELECT {_COLUMNS} FROM _stage "
            "ORDER BY station_id, time "
            "ON CONFLICT (station_id, time) DO NOTHING RETURNING station_id, time, dose_rate_nsv_h"
        )
        if keep_rollups:
            hourly = rollups.upsert_sql(
                "readings_hourly", "ins", "date_trunc('hour', time)", "postgresql"
            )
            daily = rollups.upsert_sql(
                "readings_daily", "ins", "date_trunc('day', time, %(zone)s)", "postgresql"
            )
            ctes = f"ins AS ({insert}), h AS ({hourly}), d AS ({daily})"
            sql = f"WITH {ctes} SELECT count(*) FROM ins"
        else:
            sql = f"WITH ins AS ({insert}) SELECT count(*) FROM ins"
        cur.execute(sql, {"zone": zone})
        row = cur.fetchone()
        # TRUNCATE-free reuse: ON COMMIT DELETE ROWS empties the stage; a rollback does too.
        return int(row[0]) if row else 0


def write_sqlite(conn: Connection, readings: Sequence[Reading], zone: str) -> int:
    """Write *readings* in the caller's (IMMEDIATE) transaction; returns how many were new."""
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS _stage ({_COLUMNS}, hour_bucket, day_bucket)"
    )
    conn.exec_driver_sql("DELETE FROM _stage")
    text_of = rollups.sqlite_text
    params = [
        (
            r.station_id,
            text_of(r.time),
            *reading_row(r)[2:],
            text_of(rollups.hour_bucket(r.time)),
            text_of(rollups.day_bucket(r.time, zone)),
        )
        for r in readings
    ]
    placeholders = ", ".join("?" * (len(READING_COLUMNS) + 2))
    conn.exec_driver_sql(f"INSERT INTO _stage VALUES ({placeholders})", params)
    # Keep the first of any duplicates within the batch, then drop what is already stored.
    conn.exec_driver_sql(
        "DELETE FROM _stage WHERE rowid NOT IN "
        "(SELECT min(rowid) FROM _stage GROUP BY station_id, time)"
    )
    conn.exec_driver_sql(
        "DELETE FROM _stage WHERE EXISTS (SELECT 1 FROM readings r "
        "WHERE r.station_id = _stage.station_id AND r.time = _stage.time)"
    )
    added = conn.exec_driver_sql(
        f"INSERT INTO readings ({_COLUMNS}) SELECT {_COLUMNS} FROM _stage"
    ).rowcount
    conn.exec_driver_sql(rollups.upsert_sql("readings_hourly", "_stage", "hour_bucket", "sqlite"))
    conn.exec_driver_sql(rollups.upsert_sql("readings_daily", "_stage", "day_bucket", "sqlite"))
    return int(added)
