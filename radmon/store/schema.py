"""The one schema both backends share (SQLAlchemy Core).

Rollup tables exist on SQLite and plain PostgreSQL; with TimescaleDB the same names are
continuous aggregates, so every query reads ``readings_hourly`` and ``readings_daily`` alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

from radmon.models import INT32_MAX, ReadingRow


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite stores them as sortable UTC text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

# Row ids are Integer columns: 32 bits on PostgreSQL. A larger id given from outside (a URL, an
# SMS reply) fails the query there rather than finding nothing.
MAX_ROW_ID = INT32_MAX

stations = Table(
    "stations",
    metadata,
    Column("station_id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("elevation_m", Float),
    Column("probe_model", Text),
    Column("district", Text),
    Column("timezone", Text),
    Column("interval_s", Integer, nullable=False, server_default="600"),
    Column("sensitivity_cps_per_usv_h", Float),
    Column("has_rain_gauge", Boolean, nullable=False, server_default="0"),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Column order matters: the bulk writers stage rows in exactly this order.
READING_COLUMNS = ReadingRow._fields

readings = Table(
    "readings",
    metadata,
    Column("station_id", String(64), nullable=False, primary_key=True),
    Column("time", UTCDateTime, nullable=False, primary_key=True),
    Column("dose_rate_nsv_h", Float, nullable=False),
    Column("uncertainty_nsv_h", Float),
    Column("counts", Integer),
    Column("interval_s", Float),
    Column("precip_mm_h", Float),
    Column("battery_v", Float),
    Column("temperature_c", Float),
    Column("status", Integer),
    Column("lat", Float),
    Column("lon", Float),
    Column("altitude_m", Float),
    sqlite_with_rowid=False,
)


def _rollup(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("station_id", String(64), nullable=False, primary_key=True),
        Column("bucket", UTCDateTime, nullable=False, primary_key=True),
        Column("n", Integer, nullable=False),
        Column("sum_nsv_h", Float, nullable=False),
        Column("min_nsv_h", Float, nullable=False),
        Column("max_nsv_h", Float, nullable=False),
        # the readings of the bucket that carry a rain rate, and the sum of their rates
        Column("rain_n", Integer, nullable=False, server_default="0"),
        Column("rain_sum_mm_h", Float),
        sqlite_with_rowid=False,
    )


readings_hourly = _rollup("readings_hourly")
readings_daily = _rollup("readings_daily")

alarms = Table(
    "alarms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("station_id", String(64), nullable=False, index=True),
    Column("kind", String(64), nullable=False),
    Column("category", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime),
    Column("cleared_at", UTCDateTime),
    Column("peak_nsv_h", Float),
    Column("baseline_nsv_h", Float),
    Column("acked_by", Text),
    Column("acked_at", UTCDateTime),
    Column("details", JSON, nullable=False, default=dict),
    Column("raised_at", UTCDateTime),  # wall-clock time the store first saw it
    Column("cleared_by", Text),  # a person who cleared it by hand (None: the engine did)
    # An episode's identity: the detection engine upserts on it, so replaying readings after a
    # restart updates the episode it opened before instead of opening a second one.
    Index("ux_alarms_episode", "station_id", "kind", "opened_at", unique=True),
)

# The streaming detection engine's snapshot (one row per engine), so a restart resumes it
# instead of warming it up again from weeks of readings.
detector_state = Table(
    "detector_state",
    metadata,
    Column("name", Text, primary_key=True),
    Column("saved_at", UTCDateTime, nullable=False),
    Column("payload", LargeBinary, nullable=False),
)

# Facts about the store itself (the zone the daily rollup was built in, TimescaleDB or not).
store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Refused input, kept for a person (ARCHITECTURE: never silently dropped). The digest makes
# keeping it idempotent: a message redelivered after a crash is not kept twice.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, nullable=False, index=True),
    Column("source", String(32), nullable=False),
    Column("origin", Text, nullable=False),
    Column("station_id", String(64)),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
)

# Bearer tokens of machines (a station that pushes over HTTP); only the SHA-256 is kept.
station_tokens = Table(
    "station_tokens",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("station_id", String(64), nullable=False, index=True),
    Column("label", Text, nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

# Hours whose rollup rows may be stale (plain PostgreSQL). A write adds one mark per hour it
# touched, in its own transaction; Store.refresh_rollups recomputes those hours and deletes only
# the marks it claimed. Marks are never updated, so writers never wait on one another here.
rollup_dirty = Table(
    "rollup_dirty",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("bucket", UTCDateTime, nullable=False, index=True),
)

# -- alerting ---------------------------------------------------------------------------------

# Every change of an alarm, appended and never updated: opened, severity raised, notified,
# acknowledged, commented, cleared (by the engine or a person). The alarm's history.
alarm_events = Table(
    "alarm_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alarm_id", Integer, nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("event", String(32), nullable=False),
    Column("actor", Text),
    Column("note", Text),
    Column("details", JSON, nullable=False, default=dict),
)

# The outbox: every notification is written here before it is sent. The dispatcher claims a
# row (state sending, lease), sends it with the row's key as idempotency key, and records the
# result. A lease that runs out (the dispatcher died mid-send) makes the row claimable again.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("channel", String(64), nullable=False),
    Column("address", Text, nullable=False),
    Column("contact", Text),
    Column("route", Text, nullable=False, server_default=""),
    Column("group_key", Text, nullable=False, server_default=""),
    Column("kind", String(16), nullable=False),
    Column("alarm_ids", JSON, nullable=False, default=list),
    Column("subject", Text, nullable=False, server_default=""),
    Column("text", Text, nullable=False),
    Column("payload", JSON, nullable=False, default=dict),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_at", UTCDateTime),
    Column("claimed_by", Text),
    Column("sent_at", UTCDateTime),
    Column("provider_id", Text),
    Column("last_error", Text),
    Index("ix_notifications_due", "state", "next_attempt_at"),
)

# When each route first saw each alarm as its own (escalation delays count from there).
alert_tracks = Table(
    "alert_tracks",
    metadata,
    Column("route", Text, primary_key=True),
    Column("alarm_id", Integer, primary_key=True),
    Column("first_at", UTCDateTime, nullable=False),
)

# The notification log (as Alertmanager's): per route, group and recipient, when it was last
# told and what it was told about each alarm, so nothing is sent twice and a restart resumes.
alert_sends = Table(
    "alert_sends",
    metadata,
    Column("route", Text, primary_key=True),
    Column("group_key", Text, primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("address", Text, primary_key=True),
    Column("last_sent_at", UTCDateTime, nullable=False),
    Column("marks", JSON, nullable=False, default=dict),
)

# Maintenance silences: alarms matching them are recorded but nobody is paged until they end.
silences = Table(
    "silences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("matchers", JSON, nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False, index=True),
    Column("created_by", Text, nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
)

# People who log in (web, API); the password is kept only as an argon2 hash.
users = Table(
    "users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

# Signed-in browsers. Only a SHA-256 of the cookie is kept: a copy of the database lets
# nobody act as a signed-in user.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("user_name", String(64), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
    Column("remote_addr", Text, nullable=False, server_default=""),
    Column("user_agent", Text, nullable=False, server_default=""),
)

# Every write, by whom, from where, and how it ended (the office's answer to "who did this").
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False, server_default=""),
    Column("outcome", String(16), nullable=False),
    Column("source", Text, nullable=False, server_default=""),
    Column("details", JSON, nullable=False),
)

# Bearer tokens of machines that read or act through the API (integrations, dashboards of
# other offices), each with a role like a person's.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("name", String(64), nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("revoked_at", UTCDateTime),
)
