"""Idempotent bulk writes of readings, one implementation per backend.

Duplicates are rare (a redelivery after a crash), so a batch is first written straight into
``readings``: COPY on PostgreSQL, executemany on SQLite. If any reading is already stored, that
attempt rolls back and the batch goes through a staging table that keeps only the new ones
(on PostgreSQL the caller's whole transaction is tried again: a savepoint around the COPY
cost two round trips on every batch to spare one on a rare redelivery). On PostgreSQL the
rollups are then only told which hours changed (see ``rollups``); SQLite merges exactly the
rows that were added into its rollups. Both return the readings that were new (of repeats in
one batch, the first), so the detectors judge exactly what was stored.
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
) -> list[AnyReading]:
    """Write *batch* in the caller's transaction; returns the readings that were new.

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
            added = list(batch)
        else:
            added = _insert_new_via_stage(cur, batch)
        if mark_hours and added:
            cur.execute(
                "INSERT INTO rollup_dirty (bucket) SELECT unnest(%s::timestamptz[])",
                (rollups.touched_hours([r.time for r in added]),),
            )
        return added


def _copy(cur: psycopg.Cursor, table: str, batch: Sequence[AnyReading]) -> None:
    with cur.copy(f"COPY {table} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_PG_TYPES)
        for reading in batch:
            copy.write_row(reading_row(reading))


def _insert_new_via_stage(cur: psycopg.Cursor, batch: Sequence[AnyReading]) -> list[AnyReading]:
    # Created here, in this transaction: one created by a transaction that later rolled back
    # (a deadlock retried) is gone, so no "already created" flag can be trusted.
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS _stage (LIKE readings) ON COMMIT DELETE ROWS")
    first = _first_of_each_key(batch)
    _copy(cur, "_stage", list(first.values()))
    # Key order makes concurrent writers take row locks in one global order: no deadlock.
    cur.execute(
        f"INSERT INTO readings ({_COLUMNS}) SELECT {_COLUMNS} FROM _stage "
        "ORDER BY station_id, time ON CONFLICT (station_id, time) DO NOTHING "
        "RETURNING station_id, time"
    )
    return [first[key] for key in cur.fetchall()]


def _first_of_each_key(batch: Sequence[AnyReading]) -> dict[tuple[str, datetime], AnyReading]:
    """The batch's first reading of each (station, time), by key: a later one in the same
    batch is a repeat, so the store keeps, and the detectors judge, what came first."""
    first: dict[tuple[str, datetime], AnyReading] = {}
    for r in batch:
        first.setdefault((r.station_id, r.time), r)
    return first


# -- SQLite ------------------------------------------------------------------------------------


def write_sqlite(conn: Connection, batch: Sequence[AnyReading], zone: str) -> list[AnyReading]:
    """Write *batch* in the caller's (IMMEDIATE) transaction; returns the readings that were
    new."""
    texts: dict[datetime, str] = {}
    keyed: dict[tuple[str, str], tuple[AnyReading, tuple[Any, ...]]] = {}
    for r in batch:
        stamp = texts.get(r.time)
        if stamp is None:
            stamp = texts[r.time] = rollups.sqlite_text(r.time)
        if (r.station_id, stamp) not in keyed:  # a later repeat in the batch is no reading
            keyed[(r.station_id, stamp)] = (r, (r.station_id, stamp, *reading_row(r)[2:]))
    params = [row for _, row in keyed.values()]
    placeholders = ", ".join("?" * len(READING_COLUMNS))
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(
                f"INSERT INTO readings ({_COLUMNS}) VALUES ({placeholders})", params
            )
        added = [r for r, _ in keyed.values()]
    except IntegrityError:
        new_keys = _insert_new_via_stage_sqlite(conn, params, placeholders)
        added = [keyed[key][0] for key in new_keys]
    rollups.merge_sqlite(conn, *rollups.aggregate(_new_rows(added), zone))
    return added


def _insert_new_via_stage_sqlite(
    conn: Connection, params: list[tuple[Any, ...]], placeholders: str
) -> list[tuple[str, str]]:
    """Insert the rows of *params* (one per key) not stored yet; returns their keys."""
    conn.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS _stage ({_COLUMNS})")
    conn.exec_driver_sql("DELETE FROM _stage")
    conn.exec_driver_sql(f"INSERT INTO _stage VALUES ({placeholders})", params)
    conn.exec_driver_sql(
        "DELETE FROM _stage WHERE EXISTS (SELECT 1 FROM readings r "
        "WHERE r.station_id = _stage.station_id AND r.time = _stage.time)"
    )
    conn.exec_driver_sql(f"INSERT INTO readings ({_COLUMNS}) SELECT {_COLUMNS} FROM _stage")
    return [(s, t) for s, t in conn.exec_driver_sql("SELECT station_id, time FROM _stage")]
