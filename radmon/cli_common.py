"""What every ``radmon`` command shares: the ``--config`` option, the store it opens, and
turning radmon's own errors into exit status 2 (so a sub-app keeps the contract on its own,
under ``typer.testing.CliRunner`` too)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from radmon.config import CONFIG_ENV, load_settings
from radmon.errors import InputError, RadmonError

if TYPE_CHECKING:
    from radmon.store import Store

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
def exit_2_on_bad_input() -> Iterator[None]:
    try:
        yield
    except RadmonError as exc:
        typer.echo(f"radmon: {exc}", err=True)
        raise typer.Exit(2) from exc


@contextmanager
def ready_store(config: Path | None) -> Iterator[Store]:
    """The configured store, refusing a missing or old schema (exit 2); closed afterwards."""
    from radmon.store import Store

    store = Store.open(load_settings(config))
    try:
        store.meta()
        yield store
    finally:
        store.close()


def check_writable(*paths: Path | None) -> None:
    """Refuse, before any work, an output whose directory is missing or that is a directory:
    found after an hour of simulating, or after the first of three files, it cost both."""
    for path in paths:
        if path is None:
            continue
        if path.is_dir():
            raise InputError(f"{path}: is a directory; give a file name to write")
        if not path.resolve().parent.is_dir():
            raise InputError(f"{path}: cannot write: no directory {path.parent}")


@contextmanager
def replaced_when_complete(path: Path) -> Iterator[TextIO]:
    """A text file that takes *path*'s place only once it is written whole: a refused request
    or a failure half-way leaves whatever was at *path* as it was (an export used to empty
    the user's file before it found the station unknown)."""
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        out = part.open("x", encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"{path}: cannot write: {exc.strerror}") from exc
    try:
        with out:
            yield out
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
