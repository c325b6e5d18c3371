"""The dead-letter store: refused input with its source, reason and raw payload.

Keeping is idempotent through a digest of (source, origin, station, key or payload), so a
message that the broker redelivers after a crash, or a file imported twice, is kept once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, func, select

from radmon.models import DEAD_LETTER_MAX_PAYLOAD, DeadLetter
from radmon.store.engine import dialect_insert
from radmon.store.schema import dead_letters


def digest(letter: DeadLetter) -> str:
    # the station too: stations pushing over HTTP from behind one gateway share its address,
    # and the same bad body from two of them is two letters, one for each to fix
    parts = (letter.source, letter.origin, letter.station_id or "", letter.key or letter.payload)
    key = "\0".join(parts)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def keep(conn: Connection, letters: Sequence[DeadLetter]) -> int:
    """Insert *letters* not kept before; returns how many were new."""
    if not letters:
        return 0
    rows = [
        {
            "received_at": d.received_at,
            "source": d.source[:32],
            "origin": d.origin,
            "station_id": d.station_id[:64] if d.station_id else None,
            "reason": d.reason,
            "payload": d.payload[:DEAD_LETTER_MAX_PAYLOAD],
            "digest": digest(d),
        }
        for d in letters
    ]
    stmt = dialect_insert(conn)(dead_letters).on_conflict_do_nothing(index_elements=["digest"])
    # rowcount is -1 for a batched insert on PostgreSQL: count what comes back instead
    return len(conn.execute(stmt.returning(dead_letters.c.id), rows).all())


def listing(
    conn: Connection,
    *,
    limit: int = 100,
    source: str | None = None,
    since: datetime | None = None,
) -> list[DeadLetter]:
    """The newest dead letters first."""
    query = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
    if source:
        query = query.where(dead_letters.c.source == source)
    if since:
        query = query.where(dead_letters.c.received_at >= since)
    return [
        DeadLetter.model_validate({k: v for k, v in row.items() if k != "digest"})
        for row in conn.execute(query).mappings()
    ]


def counts(conn: Connection) -> dict[str, int]:
    """How many dead letters each source has produced (for monitoring)."""
    query = select(dead_letters.c.source, func.count()).group_by(dead_letters.c.source)
    return {source: n for source, n in conn.execute(query)}
