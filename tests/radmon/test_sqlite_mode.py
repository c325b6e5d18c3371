"""The SQLite store runs in WAL mode, so the web server reads while the ingest writes."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from radmon.models import Reading, Station
from radmon.store import Store
from tests.conftest import sqlite_settings


def test_sqlite_store_is_in_wal_mode(tmp_path: Path) -> None:
    store = Store.open(sqlite_settings(tmp_path))
    try:
        store.upgrade()
        with store.engine.connect() as conn:
            mode = conn.execute(text("PRAGMA journal_mode")).scalar_one()
            synchronous = conn.execute(text("PRAGMA synchronous")).scalar_one()
            foreign_keys = conn.execute(text("PRAGMA foreign_keys")).scalar_one()
        assert mode == "wal"
        assert synchronous == 1  # NORMAL: durable across a crash of the process in WAL
        assert foreign_keys == 1

        # A write goes to the write-ahead log, and a reader's open snapshot neither blocks a
        # writer's commit nor sees it (in rollback-journal mode the commit would fail with
        # "database is locked" while the reader holds its lock).
        store.upsert_stations([Station(station_id="QN001", name="Hạ Long", lat=21.0, lon=107.0)])
        store.write_readings(
            [
                Reading(
                    station_id="QN001",
                    time=datetime(2026, 11, 21, 3, 0, tzinfo=UTC),
                    dose_rate_nsv_h=105.2,
                )
            ]
        )
        database = tmp_path / "radmon.db"
        assert (tmp_path / "radmon.db-wal").exists()
        reader = sqlite3.connect(database, timeout=0.5, isolation_level=None)
        writer = sqlite3.connect(database, timeout=0.5, isolation_level=None)
        try:
            reader.execute("BEGIN")
            assert reader.execute("SELECT count(*) FROM readings").fetchone() == (1,)
            writer.execute("DELETE FROM readings")  # autocommit: commits at once
            assert reader.execute("SELECT count(*) FROM readings").fetchone() == (1,)
            reader.execute("COMMIT")
            assert reader.execute("SELECT count(*) FROM readings").fetchone() == (0,)
        finally:
            writer.close()
            reader.close()
    finally:
        store.close()

    # The mode is a property of the database file, not only of the store's connections.
    plain = sqlite3.connect(tmp_path / "radmon.db")
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        plain.close()
