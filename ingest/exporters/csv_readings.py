"""The detection CSV (CONTRACTS): ``time,station_id,dose_rate_nsv_h,precip_mm_h``, and the
position of a mobile station's reading (``lat,lon,altitude_m``, empty for a fixed station).

Times are UTC with ``Z``, values in nSv/h written with Python's shortest exact float text, so
importing the export gives back the same readings, a survey drive's positions included; an
empty cell is unknown. Rows come station by station, oldest first.
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

COLUMNS = ("time", "station_id", "dose_rate_nsv_h", "precip_mm_h", "lat", "lon", "altitude_m")


def write(request: ExportRequest, out: TextIO) -> ExportReport:
    report = ExportReport(format="csv")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for station in request.stations:
        seen = False
        for r in station_readings(request.store, station.station_id, request.start, request.end):
            optional = (r.precip_mm_h, r.lat, r.lon, r.altitude_m)
            writer.writerow(
                (
                    utc_text(r.time),
                    r.station_id,
                    repr(float(r.dose_rate_nsv_h)),
                    *("" if v is None else repr(float(v)) for v in optional),
                )
            )
            report.readings += 1
            seen = True
        report.stations += seen
    return report


EXPORTER = Exporter(
    name="csv",
    description="detection CSV: time (UTC, Z),station_id,dose_rate_nsv_h,precip_mm_h[,lat,lon,…]",
    write=write,
)
