"""Initial schema: stations, readings (hypertable when TimescaleDB is there), rollups, alarms.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import context, op

from radmon.store import timescale
from radmon.store.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _rollup_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("bucket", UTCDateTime, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("sum_nsv_h", sa.Float, nullable=False),
        sa.Column("min_nsv_h", sa.Float, nullable=False),
        sa.Column("max_nsv_h", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("station_id", "bucket"),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    options = context.config.attributes["options"]
    use_timescale = options["timescale"]
    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "stations",
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("elevation_m", sa.Float),
        sa.Column("probe_model", sa.Text),
        sa.Column("district", sa.Text),
        sa.Column("timezone", sa.Text),
        sa.Column("interval_s", sa.Integer, nullable=False, server_default="600"),
        sa.Column("sensitivity_cps_per_usv_h", sa.Float),
        sa.Column("has_rain_gauge", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "readings",
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("time", UTCDateTime, nullable=False),
        sa.Column("dose_rate_nsv_h", sa.Float, nullable=False),
        sa.Column("uncertainty_nsv_h", sa.Float),
        sa.Column("counts", sa.Integer),
        sa.Column("interval_s", sa.Float),
        sa.Column("precip_mm_h", sa.Float),
        sa.Column("battery_v", sa.Float),
        sa.Column("temperature_c", sa.Float),
        sa.Column("status", sa.Integer),
        # The btree on (station_id, time) serves "a station over a period" and idempotency.
        sa.PrimaryKeyConstraint("station_id", "time"),
        sqlite_with_rowid=False,
    )
    if use_timescale:
        timescale.create_hypertable(op.get_bind(), options["chunk_interval_days"])
        timescale.create_aggregates(op.get_bind(), options["timezone"])
    else:
        if op.get_bind().dialect.name == "postgresql":
            # Time-ordered appends make BRIN tiny and effective for "everything since".
            op.execute("CREATE INDEX readings_time_brin ON readings USING brin (time)")
        _rollup_table("readings_hourly")
        _rollup_table("readings_daily")
    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime),
        sa.Column("cleared_at", UTCDateTime),
        sa.Column("peak_nsv_h", sa.Float),
        sa.Column("baseline_nsv_h", sa.Float),
        sa.Column("acked_by", sa.Text),
        sa.Column("acked_at", UTCDateTime),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index("ix_alarms_station_id", "alarms", ["station_id"])
    op.create_index("ix_alarms_state", "alarms", ["state"])


def downgrade() -> None:
    raise NotImplementedError("radmon does not downgrade; restore a backup instead")
