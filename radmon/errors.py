"""Errors a person can act on: each says where the bad input is and what was expected."""

from __future__ import annotations

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
