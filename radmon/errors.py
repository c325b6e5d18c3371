"""Errors a person can act on: each says where the bad input is and what was expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError


class RadmonError(Exception):
    """Base of radmon's own errors."""


class InputError(RadmonError, ValueError):
    """Bad input (a file, a payload, a configuration); the CLI turns it into exit status 2."""


def first_problem(exc: ValidationError, whole: str = "value") -> tuple[str, str, Any]:
    """The first problem pydantic found: (dotted field, message, the input it got).

    Callers prefix it with where the input came from (file, line, key).
    """
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or whole
    return field, first["msg"], first.get("input")


def not_utf8(path: Path) -> InputError:
    """The error for a text file that is not UTF-8, naming its first bad line and byte (the
    decoder's own message gives a byte offset within whatever buffer it was reading)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return InputError(
                    f"{path}: line {number}: not UTF-8 (byte 0x{raw[exc.start]:02x}): save the "
                    "file as UTF-8"
                )
    return InputError(f"{path}: not UTF-8: save the file as UTF-8")
