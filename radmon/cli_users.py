"""``radmon users add|list|role|disable|enable|password``: the people who sign in, and roles.

The password comes on stdin (one line) so it stays out of the shell history and ``ps``; on a
terminal it is asked twice without echo. Bad input exits 2 with a message naming the field.
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from radmon import audit
from radmon.cli_common import ConfigOption, exit_2_on_bad_input, ready_store
from radmon.errors import InputError
from radmon.users import (
    Role,
    add_user,
    check_name,
    list_users,
    set_disabled,
    set_password,
    set_role,
)

users_app = typer.Typer(no_args_is_help=True, help="People who sign in, and their roles.")


def _read_password() -> str:
    """One line of stdin without its line ending; on a terminal, asked twice without echo."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            raise InputError("password: the two entries differ")
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        raise InputError("password: empty; give it as one line on stdin")
    return password


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Sign-in name: letters, digits, _ . @ -")],
    role: Annotated[
        Role,
        typer.Option("--role", case_sensitive=False, help="viewer < officer < commander < admin"),
    ],
    config: ConfigOption = None,
) -> None:
    """Create a user; the password is read from stdin (one line)."""
    with exit_2_on_bad_input():
        check_name(name)  # before asking for a password that would be thrown away
        with ready_store(config) as store:
            user = add_user(store, name, role, _read_password())
            _audit(store, "users add", name, {"role": user.role})
    typer.echo(f"user {user.name} added ({user.role})")


@users_app.command("list")
def users_list(config: ConfigOption = None) -> None:
    """Every user with their role, and whether they are disabled."""
    with exit_2_on_bad_input(), ready_store(config) as store:
        users = list_users(store)
    for user in users:
        state = "disabled" if user.disabled else "active"
        created = user.created_at.isoformat(timespec="seconds")
        typer.echo(f"{user.name}\t{user.role}\t{state}\t{created}")
    if not users:
        typer.echo("no users yet: add one with 'radmon users add NAME --role ROLE'")


NameArgument = Annotated[str, typer.Argument(help="The user's sign-in name.")]


def _audit(store, action: str, name: str, details: dict | None = None) -> None:
    audit.record(store, audit.cli_actor(), action, target=name, source="cli", details=details)


@users_app.command("role")
def users_role(
    name: NameArgument,
    role: Annotated[Role, typer.Option("--role", case_sensitive=False, help="the new role")],
    config: ConfigOption = None,
) -> None:
    """Give a user another role; their sessions end so it applies at once."""
    with exit_2_on_bad_input(), ready_store(config) as store:
        user = set_role(store, name, role)
        _audit(store, "users role", name, {"role": user.role})
    typer.echo(f"user {name} is now {user.role}")


@users_app.command("disable")
def users_disable(name: NameArgument, config: ConfigOption = None) -> None:
    """Stop a user signing in (their history stays); their sessions end."""
    with exit_2_on_bad_input(), ready_store(config) as store:
        set_disabled(store, name, True)
        _audit(store, "users disable", name)
    typer.echo(f"user {name} disabled")


@users_app.command("enable")
def users_enable(name: NameArgument, config: ConfigOption = None) -> None:
    """Let a disabled user sign in again."""
    with exit_2_on_bad_input(), ready_store(config) as store:
        set_disabled(store, name, False)
        _audit(store, "users enable", name)
    typer.echo(f"user {name} enabled")


@users_app.command("password")
def users_password(name: NameArgument, config: ConfigOption = None) -> None:
    """Set a new password (from stdin, one line); every session of the user ends."""
    with exit_2_on_bad_input(), ready_store(config) as store:
        set_password(store, name, _read_password())
        _audit(store, "users password", name)
    typer.echo(f"password of {name} changed")
