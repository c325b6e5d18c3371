"""Detection: one row per alarm episode, and the streaming engine's saved state.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

from radmon.errors import RadmonError
from radmon.store.schema import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

EPISODE_INDEX = "ux_alarms_episode"


def _refuse_duplicate_episodes() -> None:
    # Nothing wrote alarms before this revision except by hand; merging such rows would mean
    # guessing which state and acknowledgement are right, so a person decides.
    query = sa.text(
        "SELECT station_id, kind, opened_at, count(*) FROM alarms "
        "GROUP BY station_id, kind, opened_at HAVING count(*) > 1 "
        "ORDER BY station_id, kind, opened_at LIMIT 5"
    )
    duplicates = op.get_bind().execute(query).all()
    if duplicates:
        listed = "; ".join(f"{s} {k} opened {o} ({n} rows)" for s, k, o, n in duplicates)
        raise RadmonError(
            "table alarms holds more than one row for one alarm episode (station_id, kind, "
            f"opened_at): {listed}. Delete or merge the extra rows, then run 'radmon db upgrade' "
            "again."
        )


def upgrade() -> None:
    # (station_id, kind, opened_at) is an episode's identity: the detection engine upserts on
    # it, so a replay after a restart updates the episode instead of opening it again.
    _refuse_duplicate_episodes()
    op.create_index(EPISODE_INDEX, "alarms", ["station_id", "kind", "opened_at"], unique=True)
    op.create_table(
        "detector_state",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("saved_at", UTCDateTime, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("detector_state")
    op.drop_index(EPISODE_INDEX, "alarms")
