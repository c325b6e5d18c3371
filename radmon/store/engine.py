"""Engines for the two backends, with the connection settings each needs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from radmon.errors import InputError

# Execution option that marks a connection as a writer (see _sqlite_begin).
WRITER_OPTION = "radmon_writer"


def shown_url(url: str) -> str:
    """*url* for a message: its password masked (errors end up in logs and terminals)."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)[:300]


def normalise_url(url: str) -> str:
    """Map the CONTRACTS URLs (``sqlite:///PATH``, ``postgresql://…``) onto SQLAlchemy drivers."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InputError(f"database.url {shown_url(url)!r} is not a database URL") from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        if not url.partition("://")[2].startswith("/") or not parsed.database:
            raise InputError(
                f"database.url {shown_url(url)!r}: a SQLite store is sqlite:///PATH "
                "(three slashes, then a file path; four for an absolute one)"
            )
        return parsed.set(drivername="sqlite+pysqlite").render_as_string(hide_password=False)
    raise InputError(
        f"database.url {shown_url(url)!r}: only sqlite:/// and postgresql:// are supported"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web server read while the ingest writes; NORMAL is durable across
    # process crashes (only an OS crash can lose the last transactions).
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # A writer takes the lock up front (IMMEDIATE), so a read-then-write transaction cannot
    # fail half-way with SQLITE_BUSY; readers stay deferred and never block the ingest in WAL.
    writer = conn.get_execution_options().get(WRITER_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def _postgres_utc(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
        # The store's queries are short and index-driven; JIT compilation costs more than it
        # saves on them (40-57 ms of a 150 ms monthly statistics query, bench.store_queries).
        cursor.execute("SET jit = off")
    dbapi_connection.commit()


def make_engine(url: str, pool_size: int = 5) -> Engine:
    """An engine for *url* with WAL on SQLite and UTC sessions on PostgreSQL."""
    normalised = normalise_url(url)
    parsed = make_url(normalised)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(normalised, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(normalised, pool_size=pool_size, pool_pre_ping=True)
    event.listen(engine, "connect", _postgres_utc)
    return engine


def dialect_insert(conn: Connection) -> Any:
    """The INSERT construct with ON CONFLICT for *conn*'s backend (both speak it alike)."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
