"""``export_readings``: check the request once, then let the format stream it out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO

from ingest.exporters.base import (
    Exporter,
    ExportReport,
    ExportRequest,
    period,
    select_stations,
)
from ingest.exporters.registry import EXPORTERS
from radmon.errors import InputError
from radmon.store import Store


def export_readings(
    store: Store,
    fmt: str,
    out: TextIO,
    *,
    start: datetime,
    end: datetime,
    stations: Sequence[str] | None = None,
    exporters: Mapping[str, Exporter] | None = None,
    **options: Any,
) -> ExportReport:
    """Write the readings of *stations* (all when None) in [start, end) to *out* as *fmt*.

    *out* is a text stream (UTF-8 for IRIX). Raises InputError for an unknown format or option,
    an empty or zoneless period, or an unknown station.
    """
    registry = EXPORTERS if exporters is None else exporters
    exporter = registry.get(fmt)
    if exporter is None:
        raise InputError(f"unknown export format {fmt!r} (known: {', '.join(sorted(registry))})")
    unknown = sorted(set(options) - exporter.options)
    if unknown:
        accepted = ", ".join(sorted(exporter.options)) or "none"
        raise InputError(
            f"export format {fmt!r} has no option {', '.join(unknown)} (accepted: {accepted})"
        )
    start, end = period(start, end)
    request = ExportRequest(
        store=store,
        stations=select_stations(store, stations),
        start=start,
        end=end,
        options=options,
    )
    return exporter.write(request, out)
