"""TimescaleDB-only DDL: hypertable, continuous aggregates and the policies from configuration.

Nothing here runs on plain PostgreSQL or SQLite; there the store keeps rollup tables itself.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from radmon.config import StoreSettings


def available(conn: Connection) -> bool:
    """Whether the server can load the extension (installed or installable)."""
    if conn.dialect.name != "postgresql":
        return False
    found = conn.execute(
        text("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).scalar_one()
    return bool(found)


def installed(conn: Connection) -> bool:
    """Whether the extension is active in this database."""
    if conn.dialect.name != "postgresql":
        return False
    found = conn.execute(
        text("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
    ).scalar_one()
    return bool(found)


def _cagg_sql(name: str, bucket: str) -> str:
    return f"""
        CREATE MATERIALIZED VIEW {name}
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT station_id, {bucket} AS bucket, count(*) AS n,
               sum(dose_rate_nsv_h) AS sum_nsv_h,
               min(dose_rate_nsv_h) AS min_nsv_h,
               max(dose_rate_nsv_h) AS max_nsv_h,
               count(precip_mm_h) AS rain_n,
               sum(precip_mm_h) AS rain_sum_mm_h
        FROM readings GROUP BY station_id, {bucket}
        WITH NO DATA
    """


def create_hypertable(conn: Connection, chunk_interval_days: int) -> None:
    """Turn ``readings`` into a hypertable (it must still be empty)."""
    conn.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
    conn.execute(
        text(
            "SELECT create_hypertable('readings', 'time', "
            "chunk_time_interval => make_interval(days => :days), if_not_exists => true)"
        ),
        {"days": chunk_interval_days},
    )


def create_aggregates(conn: Connection, timezone: str) -> None:
    """Hourly and daily (local day in *timezone*) continuous aggregates, real-time enabled."""
    conn.execute(text(_cagg_sql("readings_hourly", "time_bucket(INTERVAL '1 hour', time)")))
    create_aggregates_daily(conn, timezone)


def create_aggregates_daily(conn: Connection, timezone: str) -> None:
    zone = timezone.replace("'", "''")  # an IANA name validated by the settings; quoted anyway
    conn.execute(
        text(_cagg_sql("readings_daily", f"time_bucket(INTERVAL '1 day', time, '{zone}')"))
    )


def drop_daily_aggregate(conn: Connection) -> None:
    conn.execute(text("DROP MATERIALIZED VIEW IF EXISTS readings_daily"))


def drop_aggregates(conn: Connection) -> None:
    conn.execute(text("DROP MATERIALIZED VIEW IF EXISTS readings_daily"))
    conn.execute(text("DROP MATERIALIZED VIEW IF EXISTS readings_hourly"))


def apply_policies(conn: Connection, settings: StoreSettings) -> None:
    """Make the refresh, compression and retention policies match *settings* (idempotent)."""
    for view, schedule in (("readings_hourly", "15 minutes"), ("readings_daily", "1 hour")):
        conn.execute(
            text("SELECT remove_continuous_aggregate_policy(:v, if_exists => true)"), {"v": view}
        )
        # start_offset NULL: late data of any age (an edge's backlog) is still materialised.
        conn.execute(
            text(
                "SELECT add_continuous_aggregate_policy(:v, start_offset => NULL, "
                "end_offset => INTERVAL '1 hour', schedule_interval => CAST(:s AS interval))"
            ),
            {"v": view, "s": schedule},
        )
    conn.execute(text("SELECT remove_compression_policy('readings', if_exists => true)"))
    if settings.compress_after_days:
        conn.execute(
            text(
                "ALTER TABLE readings SET (timescaledb.compress, "
                "timescaledb.compress_segmentby = 'station_id', "
                "timescaledb.compress_orderby = 'time DESC')"
            )
        )
        conn.execute(
            text("SELECT add_compression_policy('readings', make_interval(days => :d))"),
            {"d": settings.compress_after_days},
        )
    conn.execute(text("SELECT remove_retention_policy('readings', if_exists => true)"))
    if settings.retention_days:
        conn.execute(
            text("SELECT add_retention_policy('readings', make_interval(days => :d))"),
            {"d": settings.retention_days},
        )
