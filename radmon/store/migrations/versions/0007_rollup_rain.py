"""Rain in the rollups: per bucket, how many readings carried a rain rate and their sum.

A station's hourly or daily series shows the bucket's mean rain rate; without these columns
it was grouped from the station's raw readings on every request (a month of one-minute data:
43,200 rows for one chart).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import context, op

from radmon.store import rollups, timescale

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TABLES = ("readings_hourly", "readings_daily")


def upgrade() -> None:
    bind = op.get_bind()
    zone = _daily_zone(bind)
    if timescale.installed(bind) and "readings_hourly" not in sa.inspect(bind).get_table_names():
        # continuous aggregates: made again with the new columns, materialised by their
        # refresh policies (radmon db upgrade applies them); reads are real-time meanwhile
        timescale.drop_aggregates(bind)
        timescale.create_aggregates(bind, zone)
        return
    for table in _TABLES:
        op.add_column(table, sa.Column("rain_n", sa.Integer, nullable=False, server_default="0"))
        op.add_column(table, sa.Column("rain_sum_mm_h", sa.Float))
    if bind.dialect.name == "postgresql":
        for table, bucket in (
            ("readings_hourly", "date_trunc('hour', time)"),
            ("readings_daily", "date_trunc('day', time, :zone)"),
        ):
            bind.execute(
                sa.text(
                    f"UPDATE {table} t SET rain_n = x.n, rain_sum_mm_h = x.total FROM ("
                    f"SELECT station_id, {bucket} AS bucket, count(*) AS n, "
                    "sum(precip_mm_h) AS total FROM readings WHERE precip_mm_h IS NOT NULL "
                    "GROUP BY 1, 2) x WHERE t.station_id = x.station_id AND t.bucket = x.bucket"
                ),
                {"zone": zone},
            )
        return
    rows = bind.exec_driver_sql(
        "SELECT station_id, time, dose_rate_nsv_h, precip_mm_h FROM readings "
        "WHERE precip_mm_h IS NOT NULL"
    )
    parsed = ((s, rollups.parse_sqlite_text(t), d, rain) for s, t, d, rain in rows)
    for table, aggregates in zip(_TABLES, rollups.aggregate(parsed, zone), strict=True):
        params = [
            (agg[4], agg[5], station_id, rollups.sqlite_text(bucket))
            for (station_id, bucket), agg in aggregates.items()
        ]
        if params:
            bind.exec_driver_sql(
                f"UPDATE {table} SET rain_n = ?, rain_sum_mm_h = ? "
                "WHERE station_id = ? AND bucket = ?",
                params,
            )


def _daily_zone(bind: sa.Connection) -> str:
    """The zone the daily buckets were made in (the office's; a new database: the setting's)."""
    if "store_meta" in sa.inspect(bind).get_table_names():
        found = bind.execute(
            sa.text("SELECT value FROM store_meta WHERE key = 'daily_timezone'")
        ).scalar()
        if found:
            return str(found)
    return str(context.config.attributes["options"]["timezone"])


def downgrade() -> None:
    bind = op.get_bind()
    if timescale.installed(bind) and "readings_hourly" not in sa.inspect(bind).get_table_names():
        return  # the aggregates keep two columns nobody reads
    for table in _TABLES:
        op.drop_column(table, "rain_sum_mm_h")
        op.drop_column(table, "rain_n")
