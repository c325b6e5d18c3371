"""Idempotent bulk writes of readings, one implementation per backend.

Duplicates are rare (a redelivery after a crash), so a batch is first written straight into
``readings``: COPY on PostgreSQL, executemany on SQLite. If any reading is already stored, that
attempt rolls back and the batch goes through a staging table that keeps only the new ones
(on PostgreSQL the caller's whole transaction is tried again: a savepoint around the COPY
cost two round trips on every batch to spare one on a rare redelivery). On PostgreSQL the
rollups are then only told which hours changed (see ``rollups``); SQLite merges exactly the
rows that were added into its rollups.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from radmon.models import AnyReading, reading_row
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
    "float8",
    "float8",
    "float8",
]


def _new_rows(batch: Sequence[AnyReading]) -> list[rollups.NewRow]:
    return [(r.station_id, r.time, r.dose_rate_nsv_h, r.precip_mm_h) for r in batch]


# -- PostgreSQL --------------------------------------------------------------------------------


def write_postgres(
    conn: Connection, batch: Sequence[AnyReading], mark_hours: bool, fresh: bool
) -> int:
    """Write *batch* in the caller's transaction; returns how many readings were new.

    *fresh*: the batch is taken to be new and copied straight into ``readings``; if any of
    it is stored already, psycopg's UniqueViolation is raised, the transaction is lost, and
    the caller tries again with *fresh* false (through the staging table). With *mark_hours*
    (rollup tables, not TimescaleDB) the hours that gained readings are marked for
    :func:`rollups.refresh` in the same transaction, so none can be forgotten.
    """
    driver: psycopg.Connection = conn.connection.driver_connection  # type: ignore[assignment]
    with driver.cursor() as cur:
        if fresh:
            _copy(cur, "readings", batch)
            added = [r.time for r in batch]
        else:
            added = _insert_new_via_stage(cur, batch)
        if mark_hours and added:
            cur.execute(
                "INSERT INTO rollup_dirty (bucket) SELECT unnest(%s::timestamptz[])",
                (rollups.touched_hours(added),),
            )
        return len(added)


def _copy(cur: psycopg.Cursor, table: str, batch: Sequence[AnyReading]) -> None:
    with cur.copy(f"COPY {table} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_PG_TYPES)
        for reading in batch:
            copy.write_row(reading_row(reading))


def _insert_new_via_stage(cur: psycopg.Cursor, batch: Sequence[AnyReading]) -> list[datetime]:
    # Created here, in this transaction: one created by a transaction that later rolled back
    # (a deadlock retried) is gone, so no "already created" flag can be trusted.
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS _stage (LIKE readings) ON COMMIT DELETE ROWS")
    _copy(cur, "_stage", batch)
    # Key order makes concurrent writers take row locks in one global order: no deadlock.
    cur.execute(
        f"INSERT INTO readings ({_COLUMNS}) SELECT {_COLUMNS} FROM _stage "
        "ORDER BY station_id, time ON CONFLICT (station_id, time) DO NOTHING RETURNING time"
    )
    return [row[0] for row in cur.fetchall()]


# -- SQLite ------------------------------------------------------------------------------------


def write_sqlite(conn: Connection, batch: Sequence[AnyReading], zone: str) -> int:
    """Write *batch* in the caller's (IMMEDIATE) transaction; returns how many were new."""
    texts: dict[datetime, str] = {}
    params = []
    for r in batch:
        stamp = texts.get(r.time)
        if stamp is None:
            stamp = texts[r.time] = rollups.sqlite_text(r.time)
        params.append((r.station_id, stamp, *reading_row(r)[2:]))
    placeholders = ", ".join("?" * len(READING_COLUMNS))
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(
                f"INSERT INTO readings ({_COLUMNS}) VALUES ({placeholders})", params
            )
        added = _new_rows(batch)
    except IntegrityError:
        added = _insert_new_via_stage_sqlite(conn, params, placeholders)
    rollups.merge_sqlite(conn, *rollups.aggregate(added, zone))
    return len(added)


def _insert_new_via_stage_sqlite(
    conn: Connection, params: list[tuple[Any, ...]], placeholders: str
) -> list[rollups.NewRow]:
    conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS _stage ({_COLUMNS})")
    conn.exec_driver_sql("DELETE FROM _stage")
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
    conn.exec_driver_sql(f"INSERT INTO readings ({_COLUMNS}) SELECT {_COLUMNS} FROM _stage")
    rows = conn.exec_driver_sql("SELECT station_id, time, dose_rate_nsv_h, precip_mm_h FROM _stage")
    return [(s, rollups.parse_sqlite_text(t), d, rain) for s, t, d, rain in rows]
