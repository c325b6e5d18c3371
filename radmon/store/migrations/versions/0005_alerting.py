"""Alerting: alarm history, the notification outbox and log, silences, users.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

from radmon.store.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.add_column(sa.Column("raised_at", UTCDateTime))
        batch.add_column(sa.Column("cleared_by", sa.Text))
    op.create_table(
        "alarm_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alarm_id", sa.Integer, nullable=False, index=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("actor", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("contact", sa.Text),
        sa.Column("route", sa.Text, nullable=False, server_default=""),
        sa.Column("group_key", sa.Text, nullable=False, server_default=""),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("alarm_ids", sa.JSON, nullable=False),
        sa.Column("subject", sa.Text, nullable=False, server_default=""),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("claimed_at", UTCDateTime),
        sa.Column("claimed_by", sa.Text),
        sa.Column("sent_at", UTCDateTime),
        sa.Column("provider_id", sa.Text),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_notifications_due", "notifications", ["state", "next_attempt_at"])
    op.create_table(
        "alert_tracks",
        sa.Column("route", sa.Text, primary_key=True),
        sa.Column("alarm_id", sa.Integer, primary_key=True),
        sa.Column("first_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "alert_sends",
        sa.Column("route", sa.Text, primary_key=True),
        sa.Column("group_key", sa.Text, primary_key=True),
        sa.Column("channel", sa.String(64), primary_key=True),
        sa.Column("address", sa.Text, primary_key=True),
        sa.Column("last_sent_at", UTCDateTime, nullable=False),
        sa.Column("marks", sa.JSON, nullable=False),
    )
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("matchers", sa.JSON, nullable=False),
        sa.Column("starts_at", UTCDateTime, nullable=False),
        sa.Column("ends_at", UTCDateTime, nullable=False, index=True),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    for table in ("users", "silences", "alert_sends", "alert_tracks", "notifications"):
        op.drop_table(table)
    op.drop_table("alarm_events")
    with op.batch_alter_table("alarms") as batch:
        batch.drop_column("cleared_by")
        batch.drop_column("raised_at")
