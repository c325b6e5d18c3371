"""Exporters: readings out of the store as the detection CSV or an IAEA IRIX 1.0 report.

See docs/formats.md for what each format writes.
"""

from ingest.exporters.base import Exporter, ExportReport, ExportRequest
from ingest.exporters.registry import EXPORTERS
from ingest.exporters.runner import export_readings

__all__ = ["EXPORTERS", "ExportReport", "ExportRequest", "Exporter", "export_readings"]
