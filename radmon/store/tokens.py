"""Bearer tokens of stations that push readings over HTTP.

Only a SHA-256 of each token is stored: a copy of the database does not let anyone post
readings. Tokens are 256-bit random, so an unsalted fast hash is enough.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import Connection, select, update

from radmon.store.schema import station_tokens

TOKEN_PREFIX = "rmst_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(conn: Connection, station_id: str, label: str = "") -> str:
    """Create a token for *station_id*; the caller shows it once, it cannot be read back."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        station_tokens.insert().values(
            token_sha256=_hash(token),
            station_id=station_id,
            label=label,
            created_at=datetime.now(UTC),
        )
    )
    return token


def station_of(conn: Connection, token: str) -> str | None:
    """The station a live token belongs to, or None."""
    query = select(station_tokens.c.station_id).where(
        station_tokens.c.token_sha256 == _hash(token), station_tokens.c.revoked_at.is_(None)
    )
    return conn.execute(query).scalar()


def revoke(conn: Connection, station_id: str) -> int:
    """Revoke every live token of *station_id*; returns how many."""
    stmt = (
        update(station_tokens)
        .where(station_tokens.c.station_id == station_id, station_tokens.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return conn.execute(stmt).rowcount
