"""``import_file``: stream a file through its importer into the store, in bounded batches.

Stations the file defines are upserted before the readings that need them; readings go through
``Store.write_readings`` (idempotent, so importing a file twice adds nothing) and refused lines
through ``Store.keep_dead_letters`` (idempotent too). Memory holds one batch, never the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.importers.base import ImportContext, Importer
from ingest.importers.registry import KINDS
from radmon.errors import InputError
from radmon.models import DeadLetter, Reading, Station
from radmon.store import Store


@dataclass
class ImportReport:
    """What an import did; ``read`` = ``readings`` + ``rejected`` + ``skipped``."""

    file: str
    kind: str
    read: int = 0  # records examined (not counting blank, comment and header lines)
    readings: int = 0  # valid readings found in the file
    stored: int = 0  # readings new to the store
    duplicates: int = 0  # valid readings the store already had (or the file repeated)
    rejected: int = 0  # records dead-lettered
    dead_letters_kept: int = 0  # dead letters new to the store (none on a re-import)
    skipped: int = 0  # valid records that are not dose-rate readings (EURDEP other nuclides)
    stations_upserted: int = 0


class _Batches:
    """Pending stations, readings and dead letters, written when a batch is full."""

    def __init__(self, store: Store, report: ImportReport, size: int) -> None:
        self.store, self.report, self.size = store, report, size
        self.stations: dict[str, Station] = {}
        self.readings: dict[tuple[str, datetime], Reading] = {}
        self.letters: list[DeadLetter] = []

    def add(self, item: object) -> None:
        if isinstance(item, Reading):
            self.report.readings += 1
            key = (item.station_id, item.time)
            if key in self.readings:
                self.report.duplicates += 1
            else:
                self.readings[key] = item
            if len(self.readings) >= self.size:
                self.flush_readings()
        elif isinstance(item, DeadLetter):
            self.report.rejected += 1
            self.letters.append(item)
            if len(self.letters) >= self.size:
                self.flush_letters()
        elif isinstance(item, Station):
            self.stations[item.station_id] = item
            if len(self.stations) >= self.size:
                self.flush_stations()
        else:  # an importer bug, not bad input
            raise TypeError(f"importer yielded {type(item).__name__}, not an import item")

    def flush_stations(self) -> None:
        if self.stations:
            self.report.stations_upserted += self.store.upsert_stations(self.stations.values())
            self.stations.clear()

    def flush_readings(self) -> None:
        self.flush_stations()  # a reading's station is in the store before the reading
        if self.readings:
            new = self.store.write_readings(list(self.readings.values()))
            self.report.stored += new
            self.report.duplicates += len(self.readings) - new
            self.readings.clear()

    def flush_letters(self) -> None:
        if self.letters:
            self.report.dead_letters_kept += self.store.keep_dead_letters(self.letters)
            self.letters.clear()

    def flush(self) -> None:
        self.flush_readings()
        self.flush_letters()


def check_options(importer: Importer, options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - importer.options)
    if unknown:
        accepted = ", ".join(sorted(importer.options)) or "none"
        raise InputError(
            f"import format {importer.kind!r} has no option {', '.join(unknown)} "
            f"(accepted: {accepted})"
        )


def import_file(
    store: Store,
    kind: str,
    path: Path | str,
    *,
    batch_size: int = 5000,
    importers: Mapping[str, Importer] | None = None,
    **options: Any,
) -> ImportReport:
    """Import *path* as format *kind*; bad lines become dead letters, good ones are stored.

    Raises InputError naming the file for what stops an import as a whole: an unknown format or
    option, an unreadable file, a CSV without its header.
    """
    registry = KINDS if importers is None else importers
    path = Path(path)
    importer = registry.get(kind)
    if importer is None:
        raise InputError(
            f"{path}: unknown import format {kind!r} (known: {', '.join(sorted(registry))})"
        )
    check_options(importer, options)
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, not {batch_size}")
    report = ImportReport(file=str(path), kind=kind)
    ctx = ImportContext(
        kind=kind,
        file_name=path.name,
        path=str(path),
        received_at=datetime.now(UTC),
        stations={s.station_id: s for s in store.stations()},
        options=options,
        max_future_skew_s=store.settings.ingest.max_future_skew_s,
    )
    batches = _Batches(store, report, batch_size)
    try:
        # newline="" keeps quoted CSV fields with line breaks intact; undecodable bytes become
        # U+FFFD, so such a line is refused with a reason rather than stopping the import
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            for item in importer.parse(handle, ctx):
                batches.add(item)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    batches.flush()
    report.skipped = ctx.skipped
    report.read = report.readings + report.rejected + report.skipped
    return report
