"""Bearer tokens of stations that push readings over HTTP.

Only a SHA-256 of each token is stored: a copy of the database does not let anyone post
readings. Tokens are 256-bit random, so an unsalted fast hash is enough.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import Connection, RowMapping, select, update

from radmon.store.schema import api_tokens, station_tokens

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


API_TOKEN_PREFIX = "rmapi_"


def issue_api(conn: Connection, name: str, role: str, created_by: str) -> str:
    """Create a machine's token with *role*; shown once, only its hash is kept."""
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        api_tokens.insert().values(
            token_sha256=_hash(token),
            name=name,
            role=role,
            created_at=datetime.now(UTC),
            created_by=created_by,
        )
    )
    return token


def api_holder(conn: Connection, token: str) -> RowMapping | None:
    """Name, role and creation time of a live machine token, or None."""
    query = select(api_tokens.c.name, api_tokens.c.role, api_tokens.c.created_at).where(
        api_tokens.c.token_sha256 == _hash(token), api_tokens.c.revoked_at.is_(None)
    )
    return conn.execute(query).mappings().first()


def revoke_api(conn: Connection, name: str) -> int:
    """Revoke every live token named *name*; returns how many."""
    stmt = (
        update(api_tokens)
        .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return conn.execute(stmt).rowcount


def listing(conn: Connection) -> list[dict]:
    """Every token of stations and machines, live or revoked, without hashes."""
    stations = select(
        station_tokens.c.station_id.label("name"),
        station_tokens.c.label,
        station_tokens.c.created_at,
        station_tokens.c.revoked_at,
    )
    machines = select(
        api_tokens.c.name,
        api_tokens.c.role,
        api_tokens.c.created_by,
        api_tokens.c.created_at,
        api_tokens.c.revoked_at,
    )
    rows = [{"kind": "station", **row} for row in conn.execute(stations).mappings()]
    rows += [{"kind": "api", **row} for row in conn.execute(machines).mappings()]
    return sorted(rows, key=lambda row: (row["kind"], row["name"], row["created_at"]))
