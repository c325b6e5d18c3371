"""The audit log: every write to radmon, by whom, from where, and how it ended.

The web records each write request (``dashboard.audit``) and each sign-in; the CLI records the
administrative commands it runs. Entries are only ever added. Readings from stations are not
audited: they are data, kept with their source in the readings and the dead-letter store.
"""

from __future__ import annotations

import getpass
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from radmon.models import UtcDateTime
from radmon.store import audit as sql

if TYPE_CHECKING:
    from radmon.store import Store

# Longest text kept per field: an audit entry is a line, not a copy of the request.
_MAX_FIELD = 500


class AuditEntry(BaseModel):
    id: int
    at: UtcDateTime
    actor: str
    action: str
    target: str
    outcome: str
    source: str
    details: dict[str, Any]


def _line(text: str) -> str:
    """*text* as one bounded field; NUL (which PostgreSQL text refuses) shown as \\x00."""
    return text[:_MAX_FIELD].replace("\x00", "\\x00")


def record(
    store: Store,
    actor: str,
    action: str,
    *,
    target: str = "",
    outcome: str = "ok",
    source: str = "",
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> int:
    """Add one entry; returns its id."""
    with store.transaction() as conn:
        return sql.insert(
            conn,
            at or datetime.now(UTC),
            _line(actor),
            _line(action),
            _line(target),
            outcome,
            _line(source),
            details or {},
        )


def entries(
    store: Store,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Entries newest first, filtered; *before_id* pages back."""
    with store.engine.connect() as conn:
        rows = sql.fetch(
            conn, actor=actor, action=action, since=since, before_id=before_id, limit=limit
        )
    return [AuditEntry.model_validate(dict(row)) for row in rows]


def cli_actor() -> str:
    """Who runs a CLI command: the operating-system user on this host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()} (cli)"
