"""Ingest: where mobile readings were taken, the dead-letter store, station bearer tokens.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

from radmon.store.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns without defaults: instant on PostgreSQL, also on a compressed hypertable.
    for name in ("lat", "lon", "altitude_m"):
        op.add_column("readings", sa.Column(name, sa.Float))
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("station_id", sa.String(64)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("ix_dead_letters_received_at", "dead_letters", ["received_at"])
    op.create_table(
        "station_tokens",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("station_id", sa.String(64), nullable=False),
        sa.Column("label", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime),
    )
    op.create_index("ix_station_tokens_station_id", "station_tokens", ["station_id"])


def downgrade() -> None:
    op.drop_table("station_tokens")
    op.drop_table("dead_letters")
    for name in ("altitude_m", "lon", "lat"):
        op.drop_column("readings", name)
