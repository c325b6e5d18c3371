"""The newest reading of each station, kept by the writes (``Store.latest``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

from radmon.store.bulk import LATEST_FROM_READINGS_POSTGRES
from radmon.store.schema import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "station_latest",
        sa.Column("station_id", sa.String(64), primary_key=True),
        sa.Column("time", UTCDateTime, nullable=False),
        sa.Column("dose_rate_nsv_h", sa.Float, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(LATEST_FROM_READINGS_POSTGRES)
    else:
        op.execute(
            "INSERT INTO station_latest (station_id, time, dose_rate_nsv_h) "
            "SELECT r.station_id, r.time, r.dose_rate_nsv_h FROM readings r JOIN "
            "(SELECT station_id, max(time) AS newest FROM readings GROUP BY station_id) m "
            "ON r.station_id = m.station_id AND r.time = m.newest"
        )


def downgrade() -> None:
    op.drop_table("station_latest")
