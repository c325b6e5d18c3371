"""The detection CSV (CONTRACTS): ``time,station_id,dose_rate_nsv_h,precip_mm_h``.

Times are UTC with ``Z``, values in nSv/h written with Python's shortest exact float text, so
importing the export gives back the same readings; ``precip_mm_h`` is empty where unknown. Rows
come station by station, oldest first.
"""

from __future__ import annotations

import csv
from typing import TextIO

from ingest.exporters.base import (
    Exporter,
    ExportReport,
    ExportRequest,
    station_readings,
    utc_text,
)

COLUMNS = ("time", "station_id", "dose_rate_nsv_h", "precip_mm_h")


def write(request: ExportRequest, out: TextIO) -> ExportReport:
    report = ExportReport(format="csv")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for station in request.stations:
        seen = False
        for r in station_readings(request.store, station.station_id, request.start, request.end):
            precip = "" if r.precip_mm_h is None else repr(float(r.precip_mm_h))
            writer.writerow(
                (utc_text(r.time), r.station_id, repr(float(r.dose_rate_nsv_h)), precip)
            )
            report.readings += 1
            seen = True
        report.stations += seen
    return report


EXPORTER = Exporter(
    name="csv",
    description="detection CSV: time (UTC, Z),station_id,dose_rate_nsv_h,precip_mm_h",
    write=write,
)
