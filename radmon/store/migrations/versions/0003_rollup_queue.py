"""Rollup queue: hours touched by writes, refreshed in the background (plain PostgreSQL).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

from radmon.store.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rollups written before this revision were kept synchronously: nothing is stale yet.
    op.create_table(
        "rollup_dirty",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("bucket", UTCDateTime, nullable=False),
    )
    op.create_index("ix_rollup_dirty_bucket", "rollup_dirty", ["bucket"])
    # The refresh rebuilds a local day from its hours for every station: read by hour. SQLite
    # keeps its rollups synchronously; with TimescaleDB they are continuous aggregates (views).
    bind = op.get_bind()
    if (
        bind.dialect.name == "postgresql"
        and "readings_hourly" in sa.inspect(bind).get_table_names()
    ):
        op.create_index("ix_readings_hourly_bucket", "readings_hourly", ["bucket"])


def downgrade() -> None:
    op.drop_index("ix_readings_hourly_bucket", "readings_hourly", if_exists=True)
    op.drop_table("rollup_dirty")
