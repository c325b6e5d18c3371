"""What every importer shares: the items a file becomes and the context it is parsed in.

A file becomes a stream of items: a ``Reading`` to store, a ``DeadLetter`` for a line that was
refused (with a reason a person can act on and the raw line), or a ``Station`` the file defines
(EURDEP localities, a bGeigie device seen for the first time). Streaming keeps memory bounded
however long the file is; refusing line by line means one bad line never costs the good ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ingest.payloads import too_far_ahead
from radmon.errors import first_problem
from radmon.models import STATION_ID_PATTERN, DeadLetter, Reading, Station

Item = Reading | DeadLetter | Station

_STATION_ID = re.compile(STATION_ID_PATTERN)


class Refused(ValueError):
    """One record cannot be used; ``detail`` says which field and why."""

    def __init__(self, detail: str, station_id: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.station_id = station_id


def field_error(name: str, message: str) -> str:
    """The wording every importer uses for a bad field: ``field NAME: message``."""
    return f"field {name}: {message}"


def validation_detail(
    exc: ValidationError,
    shown: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> str:
    """The first pydantic error as ``field NAME: message (got 'value')``.

    *shown* maps model fields to the text the file had, so the person sees their input rather
    than the converted value (``dose_rate_nsv_h`` shows the CPM a bGeigie line carried), and
    *names* to the file's own name of the field (EURDEP's ``VALUE``).
    """
    name, message, got = first_problem(exc, "record")
    got = (shown or {}).get(name, got)
    return field_error((names or {}).get(name, name), f"{message} (got {got!r})")


@dataclass
class ImportContext:
    """The file being read, the stations known so far and the importer's options."""

    kind: str
    file_name: str  # shown in dead letters' origin: ``<file name>:<line>``
    path: str  # shown in errors that stop the import
    received_at: datetime
    stations: dict[str, Station] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    skipped: int = 0  # well-formed records that are not dose-rate readings (EURDEP other nuclides)
    max_future_skew_s: float = 300.0  # ingest.max_future_skew_s

    def not_ahead(self, moment: datetime, name: str, station_id: str | None) -> datetime:
        """*moment*, refused if it is further ahead of the clock than MQTT and HTTP allow (a
        logger whose clock was reset wrote readings that would stay "latest" for years)."""
        if problem := too_far_ahead(moment, self.received_at, self.max_future_skew_s):
            raise Refused(field_error(name, problem), station_id)
        return moment

    @property
    def source(self) -> str:
        return f"import:{self.kind}"

    def define(self, station: Station) -> Station:
        """Record a station the file defines, so later lines of the same file can use it."""
        self.stations[station.station_id] = station
        return station

    def reject(self, line: int, detail: str, raw: str, station_id: str | None = None) -> DeadLetter:
        """A dead letter for *raw* at *line*: the reason starts with the line number."""
        joiner = ", " if detail.startswith("field ") else ": "
        return DeadLetter(
            received_at=self.received_at,
            source=self.source,
            origin=f"{self.file_name}:{line}",
            # only a well-formed id: the column is 64 characters and must hold real ids
            station_id=station_id if station_id and _STATION_ID.match(station_id) else None,
            reason=f"line {line}{joiner}{detail}",
            # PostgreSQL text cannot hold NUL; keep the line readable and storable
            payload=raw.replace("\x00", "\\x00"),
        )


Parser = Callable[[Iterable[str], ImportContext], Iterator[Item]]


@dataclass(frozen=True)
class Importer:
    """One file format: its name, what it reads, and the options it accepts."""

    kind: str
    description: str
    parse: Parser
    options: frozenset[str] = frozenset()
