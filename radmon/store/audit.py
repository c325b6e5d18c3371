"""The SQL of the audit log; ``radmon.audit`` is what the web and the CLI call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, select

from radmon.store.schema import audit_log


def insert(
    conn: Connection,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    source: str,
    details: dict[str, Any],
) -> int:
    result = conn.execute(
        audit_log.insert().values(
            at=at,
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            source=source,
            details=details,
        )
    )
    return int(result.inserted_primary_key[0])


def fetch(
    conn: Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[RowMapping]:
    """Entries newest first; *before_id* pages back from an entry seen earlier."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if actor is not None:
        query = query.where(audit_log.c.actor == actor)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    return list(conn.execute(query).mappings())
