"""``radmon users add|list``: the people who sign in, and their roles.

The password comes on stdin (one line) so it stays out of the shell history and ``ps``; on a
terminal it is asked twice without echo. Bad input exits 2 with a message naming the field.

This module does not import ``radmon.cli`` (which registers ``users_app``), so there is no
import cycle; the ``--config`` option below is the same as the one there.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from radmon.config import CONFIG_ENV, load_settings
from radmon.errors import InputError, RadmonError
from radmon.users import Role, add_user, check_name, list_users

if TYPE_CHECKING:
    from radmon.store import Store

users_app = typer.Typer(no_args_is_help=True, help="People who sign in, and their roles.")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar=CONFIG_ENV,
        help="YAML configuration file (default: embedded defaults).",
        dir_okay=False,
    ),
]


@contextmanager
def _exit_2_on_bad_input() -> Iterator[None]:
    """As ``radmon.cli.main`` does, here too, so the sub-app keeps the contract on its own."""
    try:
        yield
    except RadmonError as exc:
        typer.echo(f"radmon: {exc}", err=True)
        raise typer.Exit(2) from exc


@contextmanager
def _ready_store(config: Path | None) -> Iterator[Store]:
    from radmon.store import Store

    store = Store.open(load_settings(config))
    try:
        store.meta()  # a missing or old schema: SchemaNotReady, exit 2
        yield store
    finally:
        store.close()


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
    with _exit_2_on_bad_input():
        check_name(name)  # before asking for a password that would be thrown away
        with _ready_store(config) as store:
            user = add_user(store, name, role, _read_password())
    typer.echo(f"user {user.name} added ({user.role})")


@users_app.command("list")
def users_list(config: ConfigOption = None) -> None:
    """Every user with their role, and whether they are disabled."""
    with _exit_2_on_bad_input(), _ready_store(config) as store:
        users = list_users(store)
    for user in users:
        state = "disabled" if user.disabled else "active"
        created = user.created_at.isoformat(timespec="seconds")
        typer.echo(f"{user.name}\t{user.role}\t{state}\t{created}")
    if not users:
        typer.echo("no users yet: add one with 'radmon users add NAME --role ROLE'")
