"""File importers: ``radmon import csv|bgeigie|eurdep FILE``.

Each format parses a file into a stream of readings, dead letters (a refused line with its
reason) and the stations the file defines; ``import_file`` writes that stream to the store in
bounded batches. See docs/formats.md for what each format accepts.
"""

from ingest.importers.base import ImportContext, Importer, Item
from ingest.importers.registry import KINDS
from ingest.importers.runner import ImportReport, import_file

__all__ = ["KINDS", "ImportContext", "ImportReport", "Importer", "Item", "import_file"]
