"""The export formats by name: a new format is one module plus one line here."""

from __future__ import annotations

from ingest.exporters import csv_readings, irix
from ingest.exporters.base import Exporter

EXPORTERS: dict[str, Exporter] = {
    exporter.name: exporter for exporter in (csv_readings.EXPORTER, irix.EXPORTER)
}
