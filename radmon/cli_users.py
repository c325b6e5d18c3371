"""``radmon users add|list``: the people who sign in, and their roles.

The password comes on stdin (one line) so it stays out of the shell history and ``ps``; on a
terminal it is asked twice without echo. Bad input exits 2 with a message naming the field.
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from radmon.cli_common import ConfigOption, exit_2_on_bad_input, ready_store
from radmon.errors import InputError
from radmon.users import Role, add_user, check_name, list_users

if TYPE_CHECKING:
    pass

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
