"""A database as an older radmon left it: migrations applied up to a given revision only."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from radmon.store import migrate
from radmon.store.schema import store_meta


def upgrade_to(engine: Engine, revision: str) -> None:
    """Apply the migrations up to *revision* only, with the facts ``radmon db upgrade`` keeps."""
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(migrate.MIGRATIONS))
        config.attributes["connection"] = conn
        config.attributes["options"] = {
            "timescale": False,
            "chunk_interval_days": 7,
            "timezone": "Asia/Ho_Chi_Minh",
        }
        command.upgrade(config, revision)
        conn.execute(
            store_meta.insert(),
            [
                {"key": "rollups", "value": "tables"},
                {"key": "daily_timezone", "value": "Asia/Ho_Chi_Minh"},
            ],
        )
