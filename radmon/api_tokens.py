"""Bearer tokens of machines: integrations that read (or act) through the API with a role.

Stations have their own tokens, good only for pushing their readings (``radmon tokens add
STATION``); these are for software such as another office's dashboard or a report job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from radmon.errors import InputError
from radmon.store import tokens as sql
from radmon.users import Role, User, check_name

if TYPE_CHECKING:
    from radmon.store import Store

PREFIX = sql.API_TOKEN_PREFIX
# How a machine shows in audit trails and alarm histories, apart from people.
ACTOR_PREFIX = "token:"


def issue(store: Store, name: str, role: Role | str, created_by: str) -> str:
    """A new token for the machine *name*; the caller shows it once."""
    check_name(name)
    checked = Role.parse(role)
    with store.transaction() as conn:
        return sql.issue_api(conn, name, checked.value, created_by)


def holder(store: Store, token: str) -> User | None:
    """The machine a live token belongs to, as a User with its role, or None."""
    if not token.startswith(PREFIX):
        return None
    with store.engine.connect() as conn:
        row = sql.api_holder(conn, token)
    if row is None:
        return None
    return User(name=ACTOR_PREFIX + row["name"], role=row["role"], created_at=row["created_at"])


def revoke(store: Store, name: str) -> int:
    """Revoke every live token of *name*; InputError when there was none."""
    with store.transaction() as conn:
        count = sql.revoke_api(conn, name)
    if count == 0:
        raise InputError(f"name {name!r}: no live API token with this name")
    return count


def listing(store: Store) -> list[dict[str, Any]]:
    """Every token of stations and machines, without secrets."""
    with store.engine.connect() as conn:
        return sql.listing(conn)
