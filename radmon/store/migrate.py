"""``radmon db upgrade``: Alembic migrations, then the facts and policies that follow config."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, select, text

from radmon.config import Settings
from radmon.errors import InputError
from radmon.store import rollups, timescale
from radmon.store.engine import WRITER_OPTION
from radmon.store.schema import store_meta

MIGRATIONS = Path(__file__).parent / "migrations"
UPGRADE_LOCK = 0x7261646D6F6E  # "radmon": the advisory lock that serialises upgrades


def _alembic_config(conn: Connection, options: dict[str, object]) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    cfg.attributes["options"] = options
    return cfg


def head_revision() -> str:
    """The newest migration this code knows."""
    script = ScriptDirectory.from_config(_alembic_config(None, {}))  # type: ignore[arg-type]
    return str(script.get_current_head())


def current_revision(engine: Engine) -> str | None:
    """The database's migration revision, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def read_meta(conn: Connection) -> dict[str, str]:
    return {row.key: row.value for row in conn.execute(select(store_meta))}


def _set_meta(conn: Connection, key: str, value: str) -> None:
    conn.execute(store_meta.delete().where(store_meta.c.key == key))
    conn.execute(store_meta.insert().values(key=key, value=value))


def upgrade(engine: Engine, settings: Settings) -> dict[str, str]:
    """Create or migrate the schema, then align the daily zone and TimescaleDB policies.

    Returns the store's facts (``rollups``: ``timescale`` or ``tables``; ``daily_timezone``).
    """
    zone = settings.site.timezone
    with engine.connect() as conn:
        conn.execution_options(**{WRITER_OPTION: True})
        with conn.begin():
            if engine.dialect.name == "postgresql":
                # two upgrades at once (several nodes starting) take turns: the second finds
                # the schema current, instead of both creating it and one failing half-way
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
            first_time = MigrationContext.configure(conn).get_current_revision() is None
            wanted = settings.store.timescaledb
            has_ts = timescale.available(conn)
            if wanted and not has_ts:
                raise InputError(
                    "store.timescaledb is true (require TimescaleDB) but this database server "
                    "has no timescaledb extension: install it, or set store.timescaledb to "
                    "null (use it when present) or false"
                )
            use_ts = has_ts if wanted is None else wanted
            options = {
                "timescale": use_ts,
                "chunk_interval_days": settings.store.chunk_interval_days,
                "timezone": zone,
            }
            command.upgrade(_alembic_config(conn, options), "head")
            if first_time:
                _set_meta(conn, "rollups", "timescale" if use_ts else "tables")
                _set_meta(conn, "daily_timezone", zone)
            meta = read_meta(conn)
            if wanted and meta["rollups"] != "timescale":
                raise InputError(
                    "store.timescaledb is true (require TimescaleDB) but this database was "
                    "created without it (readings in plain tables with rollup tables); set "
                    "store.timescaledb to null or false, or create the store anew"
                )
            if meta["daily_timezone"] != zone:
                # The daily buckets are local days: a new office zone means new buckets.
                if meta["rollups"] == "timescale":
                    timescale.drop_daily_aggregate(conn)
                    timescale.create_aggregates_daily(conn, zone)
                else:
                    rollups.rebuild_daily(conn, zone)
                _set_meta(conn, "daily_timezone", zone)
            if meta["rollups"] == "timescale":
                timescale.apply_policies(conn, settings.store)
            return read_meta(conn)
