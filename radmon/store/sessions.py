"""The SQL of web sessions; ``dashboard.sessions`` decides when they start, live and end.

Sessions are looked up by the SHA-256 of the cookie: the cookie is 256 random bits, so an
unsalted fast hash is enough, and the database never holds a usable cookie.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Connection, RowMapping, delete, select, update

from radmon.store.schema import users, web_sessions


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def insert(
    conn: Connection,
    token: str,
    user_name: str,
    now: datetime,
    expires_at: datetime,
    remote_addr: str,
    user_agent: str,
) -> None:
    conn.execute(
        web_sessions.insert().values(
            token_sha256=digest(token),
            user_name=user_name,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
            remote_addr=remote_addr,
            user_agent=user_agent[:300],
        )
    )


def fetch(conn: Connection, token: str) -> RowMapping | None:
    """The session with its user's role and state, or None."""
    query = (
        select(web_sessions, users.c.role, users.c.disabled, users.c.created_at.label("user_since"))
        .join(users, users.c.name == web_sessions.c.user_name)
        .where(web_sessions.c.token_sha256 == digest(token))
    )
    return conn.execute(query).mappings().first()


def touch(conn: Connection, token: str, now: datetime) -> None:
    conn.execute(
        update(web_sessions)
        .where(web_sessions.c.token_sha256 == digest(token))
        .values(last_seen_at=now)
    )


def remove(conn: Connection, token: str) -> int:
    return conn.execute(
        delete(web_sessions).where(web_sessions.c.token_sha256 == digest(token))
    ).rowcount


def remove_user(conn: Connection, user_name: str) -> int:
    """End every session of *user_name* (disabled, new password, new role)."""
    return conn.execute(delete(web_sessions).where(web_sessions.c.user_name == user_name)).rowcount


def remove_expired(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now)).rowcount
