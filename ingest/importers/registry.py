"""The import formats by name: a new format is one module plus one line here."""

from __future__ import annotations

from ingest.importers import bgeigie, csv_readings, eurdep
from ingest.importers.base import Importer

KINDS: dict[str, Importer] = {
    importer.kind: importer
    for importer in (csv_readings.IMPORTER, bgeigie.IMPORTER, eurdep.IMPORTER)
}
