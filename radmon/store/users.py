"""The SQL of users; ``radmon.users`` is the API the rest of radmon calls.

Each function takes a Connection so the caller decides the transaction. Only hashes are
stored (argon2id, made by ``radmon.users``), never passwords.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, RowMapping, func, select, update

from radmon.store.schema import users


def insert(
    conn: Connection, name: str, role: str, password_hash: str, created_at: datetime
) -> None:
    """Add a user; an existing name raises IntegrityError (the primary key)."""
    conn.execute(
        users.insert().values(
            name=name,
            role=role,
            password_hash=password_hash,
            created_at=created_at,
            disabled=False,
        )
    )


def fetch(conn: Connection, name: str) -> RowMapping | None:
    """Every column of one user, password hash included, or None."""
    return conn.execute(select(users).where(users.c.name == name)).mappings().first()


def name_taken_as(conn: Connection, name: str) -> str | None:
    """The existing user name equal to *name* but for case, or None."""
    found = conn.execute(select(users.c.name).where(func.lower(users.c.name) == name.lower()))
    return found.scalars().first()


def fetch_all(conn: Connection) -> list[RowMapping]:
    """Every user, by name; the caller leaves the hashes out of what it shows."""
    return list(conn.execute(select(users).order_by(users.c.name)).mappings())


def set_disabled(conn: Connection, name: str, disabled: bool) -> int:
    """Disable or re-enable *name*; returns how many rows changed (0: no such user)."""
    return conn.execute(
        update(users).where(users.c.name == name).values(disabled=disabled)
    ).rowcount


def set_role(conn: Connection, name: str, role: str) -> int:
    return conn.execute(update(users).where(users.c.name == name).values(role=role)).rowcount


def replace_hash(conn: Connection, name: str, old: str, new: str) -> int:
    """Swap *old* for *new* only if *old* is still stored, so a concurrent change wins."""
    stmt = (
        update(users)
        .where(users.c.name == name, users.c.password_hash == old)
        .values(password_hash=new)
    )
    return conn.execute(stmt).rowcount
