"""Users and their roles: who may read, and who may change what (``radmon users add``).

Roles are ordered and each includes the ones before it: viewer < officer < commander < admin.
Passwords are kept only as argon2id hashes. Hashing is slow and memory-hungry on purpose
(64 MiB, tens of milliseconds), so callers on an event loop run these functions in a thread.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from radmon.errors import InputError
from radmon.models import UtcDateTime
from radmon.store import sessions as session_sql
from radmon.store import users as sql

if TYPE_CHECKING:
    from radmon.store import Store

# Names appear in audit trails, logs and HTTP Basic (which cannot carry ':').
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024

# Each argon2 run takes 64 MiB: bound how many run at once so a burst of logins (or of
# guesses) cannot take the server's memory. Waiting callers queue in their threads.
_MAX_HASHING = 4
_hashing = threading.BoundedSemaphore(_MAX_HASHING)
_hasher = PasswordHasher()  # argon2id with the RFC 9106 low-memory parameters


class Role(StrEnum):
    """What a user may do; a role includes every role before it."""

    VIEWER = "viewer"
    OFFICER = "officer"
    COMMANDER = "commander"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def at_least(self, other: Role | str) -> bool:
        """Whether this role includes *other* (``<`` on a StrEnum compares spelling)."""
        return self.rank >= Role.parse(other).rank

    @classmethod
    def parse(cls, value: Role | str) -> Role:
        """The role spelt *value* (any case), or InputError naming the field."""
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            expected = ", ".join(r.value for r in cls)
            raise InputError(f"role {value!r}: expected one of {expected}") from None


class User(BaseModel):
    """A user as the rest of radmon sees one: never with the password hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    role: Role
    disabled: bool = False
    created_at: UtcDateTime


def check_name(name: str) -> str:
    """*name* if it is a valid user name, else InputError naming the field."""
    if not NAME_PATTERN.fullmatch(name):
        raise InputError(
            f"name {name!r}: expected 1 to 64 letters, digits or _ . @ - "
            "starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    """A password a person can sign in with: the sign-in form takes at most MAX_PASSWORD
    characters (a longer one set from the CLI could never be typed in), and blanks are none."""
    if len(password.strip()) < MIN_PASSWORD:
        raise InputError(f"password: at least {MIN_PASSWORD} characters other than spaces")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"password: at most {MAX_PASSWORD} characters (the sign-in form's limit)")
    return password


def _hash(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    with _hashing:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


@cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash nobody's password matches, verified for unknown names so they take as long: made
    by the hasher in use, so that it costs what a user's hash costs."""
    return hasher.hash("radmon: no such user")


def _user(row: RowMapping) -> User:
    return User(
        name=row["name"], role=row["role"], disabled=row["disabled"], created_at=row["created_at"]
    )


def add_user(store: Store, name: str, role: Role | str, password: str) -> User:
    """Create a user; bad input or an existing name raises InputError naming the field."""
    check_name(name)
    checked_role = Role.parse(role)
    check_password(password)
    password_hash = _hash(password)  # before the transaction: do not hold the write lock
    created_at = datetime.now(UTC)
    try:
        with store.transaction() as conn:
            # "Alice" beside "alice": two accounts an audit log or a colleague cannot tell apart
            if (taken := sql.name_taken_as(conn, name)) is not None and taken != name:
                raise InputError(
                    f"name {name!r}: the user {taken!r} exists; names differ by more than case"
                )
            sql.insert(conn, name, checked_role.value, password_hash, created_at)
    except IntegrityError:
        raise InputError(f"name {name!r}: a user with this name already exists") from None
    return User(name=name, role=checked_role, created_at=created_at)


def authenticate(store: Store, name: str, password: str) -> User | None:
    """The user if *password* is theirs and they are not disabled, else None.

    Unknown names verify against a dummy hash so that timing does not tell which names
    exist. A hash made with older parameters is replaced on a successful login.
    """
    row = None
    if NAME_PATTERN.fullmatch(name):
        with store.engine.connect() as conn:
            row = sql.fetch(conn, name)
    if row is None:
        _verify(_dummy_hash(_hasher), password)
        return None
    stored = row["password_hash"]
    if not _verify(stored, password) or row["disabled"]:
        return None
    if _hasher.check_needs_rehash(stored):
        fresh = _hash(password)  # outside the transaction, as in add_user
        with store.transaction() as conn:
            sql.replace_hash(conn, name, stored, fresh)
    return _user(row)


def get_user(store: Store, name: str) -> User | None:
    with store.engine.connect() as conn:
        row = sql.fetch(conn, name)
    return None if row is None else _user(row)


def list_users(store: Store) -> list[User]:
    """Every user, by name."""
    with store.engine.connect() as conn:
        return [_user(row) for row in sql.fetch_all(conn)]


def _existing(conn: Connection, name: str) -> RowMapping:
    row = sql.fetch(conn, name)
    if row is None:
        raise InputError(f"name {name!r}: no such user")
    return row


def set_disabled(store: Store, name: str, disabled: bool = True) -> User:
    """Disable (or re-enable) a user: a disabled user cannot sign in, their history stays.

    Their browser sessions end with it, here and on every node."""
    with store.transaction() as conn:
        row = _existing(conn, name)
        sql.set_disabled(conn, name, disabled)
        session_sql.remove_user(conn, name)
    return _user(row).model_copy(update={"disabled": disabled})


def set_role(store: Store, name: str, role: Role | str) -> User:
    """Give *name* another role; their sessions end so the new role applies at once."""
    checked = Role.parse(role)
    with store.transaction() as conn:
        row = _existing(conn, name)
        sql.set_role(conn, name, checked.value)
        session_sql.remove_user(conn, name)
    return _user(row).model_copy(update={"role": checked})


def set_password(store: Store, name: str, password: str) -> None:
    """Replace *name*'s password; every session of theirs ends (a stolen one with it)."""
    check_password(password)
    password_hash = _hash(password)  # before the transaction: do not hold the write lock
    with store.transaction() as conn:
        row = _existing(conn, name)
        sql.replace_hash(conn, name, row["password_hash"], password_hash)
        session_sql.remove_user(conn, name)
