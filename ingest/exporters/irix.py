"""IAEA IRIX 1.0 XML: gamma dose-rate measurements for exchange with national and IAEA systems.

Facts used (the IRIX 1.0 XML schemas IRIX.xsd, Measurements.xsd and Locations.xsd of
2013-03-31, as distributed with public IRIX libraries, and published IRIX reports):

- the root ``irix:Report`` (namespace ``http://www.iaea.org/2012/IRIX/Format``, attribute
  ``version="1.0"``) holds, in this order, ``id:Identification``, then optional sections, of
  which radmon writes ``meas:Measurements`` and ``loc:Locations``; each section has its own
  namespace under ``.../IRIX/Format/`` (Identification, Base, Measurements, Locations);
- Identification: OrganisationReporting, DateAndTimeOfCreation, ReportContext, ReportUUID,
  Confidentiality, then Identifications with ``base:OrganisationContactInfo`` (Name,
  OrganisationID, Country);
- ``meas:Measurements`` (attribute ValidAt) holds ``meas:DoseRate`` data sets: DoseRateType
  (Gamma | Beta | Beta-Gamma | Neutron), one MeasuringPeriod (StartTime, EndTime), an optional
  ApparatusType from a code list, Description, and Measurements with one Measurement per
  location: ``loc:Location`` (a ``ref`` to ``loc:Locations/loc:Location/@id``, or inline
  coordinates), ``meas:Value`` (xsd:float, attribute Unit), optional ``meas:Uncertainty``
  (attribute Unit), optional ``meas:Validated`` (Not Validated | Validated | Validated - Not
  Plausible);
- ``loc:Location`` has Name and GeographicCoordinates (Latitude, Longitude in WGS 84 decimal
  degrees, longitude in [-180, 180); Height with Above="Sea"|"Land" and Unit="m").

Decisions:

- the value is H*(10) rate in Sv/s: nSv/h × 1e-9 / 3600;
- a DoseRate data set has one measuring period, so readings are grouped by their period
  [time - interval, time] (the reading's ``interval_s``, else the station's); the period is read
  one day at a time, so memory holds a day of the chosen stations, never the whole export;
- fixed stations are listed once under ``loc:Locations`` and referenced; a mobile reading
  (with its own lat/lon) carries its position inline;
- radmon's readings are automatic, so Validated is "Not Validated" unless told otherwise;
- the report is from ``site.name``; Identifications (which needs a country code) is written
  only when ``country`` is given. ReportIdentification.xsd and Base.xsd were not available, so
  the order and content of Identification follow published reports rather than the schema.
"""

from __future__ import annotations

import math
import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TextIO
from xml.sax.saxutils import XMLGenerator
from xml.sax.xmlreader import AttributesNSImpl

from ingest.exporters.base import Exporter, ExportReport, ExportRequest, leaping
from radmon.errors import InputError
from radmon.models import Reading, Station

IRIX = "http://www.iaea.org/2012/IRIX/Format"
ID = f"{IRIX}/Identification"
BASE = f"{IRIX}/Base"
MEAS = f"{IRIX}/Measurements"
LOC = f"{IRIX}/Locations"
PREFIXES = {"irix": IRIX, "id": ID, "base": BASE, "meas": MEAS, "loc": LOC}

VALIDATED = ("Not Validated", "Validated", "Validated - Not Plausible")
APPARATUS_TYPES = (
    "Gamma - TLD",
    "Gamma - Ionisation Chamber",
    "Gamma - NaI Detector",
    "Gamma - Solid State Detector",
    "Gamma - Unspecified",
    "Gamma Geiger Muller Tube",
    "Unknown",
)
DEFAULTS = {
    "report_context": "Routine",
    "confidentiality": "For Authority Use Only",
    "validated": "Not Validated",
    "apparatus_type": "Gamma - Unspecified",
    "country": None,
}
DAY = timedelta(days=1)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def sv_per_s(nsv_h: float) -> float:
    """nSv/h to Sv/s, IRIX's unit for dose rates."""
    return nsv_h * 1e-9 / 3600.0


def location_id(station_id: str) -> str:
    """An xsd:NCName for the station (ids may start with a digit, an NCName may not)."""
    return f"st-{station_id}"


class _Writer:
    """Namespaced, indented, streamed XML on top of the standard library's XMLGenerator."""

    def __init__(self, out: TextIO) -> None:
        self.gen = XMLGenerator(out, encoding="utf-8", short_empty_elements=True)
        self.depth = 0

    def begin(self) -> None:
        self.gen.startDocument()
        for prefix, uri in PREFIXES.items():
            self.gen.startPrefixMapping(prefix, uri)

    def finish(self) -> None:
        for prefix in PREFIXES:
            self.gen.endPrefixMapping(prefix)
        self.gen.ignorableWhitespace("\n")
        self.gen.endDocument()

    def open(self, ns: str, name: str, **attrs: str) -> None:
        self._newline()
        self.gen.startElementNS((ns, name), None, _attrs(attrs))
        self.depth += 1

    def close(self, ns: str, name: str) -> None:
        self.depth -= 1
        self._newline(closing=True)
        self.gen.endElementNS((ns, name), None)

    def leaf(self, ns: str, name: str, text: str | None = None, **attrs: str) -> None:
        self._newline()
        self.gen.startElementNS((ns, name), None, _attrs(attrs))
        if text is not None:
            self.gen.characters(_clean(text))
        self.gen.endElementNS((ns, name), None)

    def _newline(self, closing: bool = False) -> None:
        if self.depth or closing:  # the root follows the XML declaration's own line break
            self.gen.ignorableWhitespace("\n" + "  " * self.depth)


def _attrs(attrs: dict[str, str]) -> AttributesNSImpl:
    values = {(None, key): _clean(value) for key, value in attrs.items()}
    return AttributesNSImpl(values, {(None, key): key for key in attrs})


def _clean(text: str) -> str:
    """Characters XML 1.0 cannot carry become U+FFFD, so the report stays well-formed."""
    return _CONTROL.sub("\ufffd", text)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: float) -> str:
    return repr(float(value))


def _degrees(value: float) -> str:
    return f"{value:.6f}"


def _longitude(value: float) -> str:
    rounded = round(value, 6)  # 179.9999999 is written 180.000000: wrap after rounding
    return _degrees(-180.0 if rounded >= 180.0 else rounded)  # IRIX: [-180, 180)


def options_of(request: ExportRequest) -> dict[str, str | None]:
    """The IRIX options with their defaults, checked against IRIX's code lists."""
    chosen = {**DEFAULTS, **request.options}
    if chosen["validated"] not in VALIDATED:
        raise InputError(f"option validated: {chosen['validated']!r} is not one of {VALIDATED}")
    if chosen["apparatus_type"] not in APPARATUS_TYPES:
        raise InputError(
            f"option apparatus_type: {chosen['apparatus_type']!r} is not one of {APPARATUS_TYPES}"
        )
    country = chosen["country"]
    if country is not None and not re.fullmatch(r"[A-Z]{2}", str(country)):
        raise InputError(f"option country: {country!r} is not a two-letter ISO code")
    return chosen


def write(request: ExportRequest, out: TextIO) -> ExportReport:
    chosen = options_of(request)
    now = datetime.now(UTC)
    organisation = request.store.settings.site.name
    report = ExportReport(format="irix")
    xml = _Writer(out)
    xml.begin()
    xml.open(IRIX, "Report", version="1.0")
    _identification(xml, organisation, now, chosen)
    xml.open(MEAS, "Measurements", ValidAt=_time(now))
    referenced: dict[str, Station] = {}  # fixed stations, listed once under loc:Locations
    seen: set[str] = set()
    ids = [station.station_id for station in request.stations]
    days = leaping(
        request.store, ids, request.start, request.end, DAY, lambda a, b: _by_period(request, a, b)
    )
    for groups in days:
        for (begin, end), measured in sorted(groups.items()):
            _dose_rate(xml, begin, end, measured, chosen)
            for station, reading in measured:
                report.readings += 1
                seen.add(station.station_id)
                if reading.lat is None or reading.lon is None:
                    referenced[station.station_id] = station
    report.stations = len(seen)
    xml.close(MEAS, "Measurements")
    if referenced:
        xml.open(LOC, "Locations")
        for station in referenced.values():
            _location(xml, station)
        xml.close(LOC, "Locations")
    xml.close(IRIX, "Report")
    xml.finish()
    return report


def _identification(
    xml: _Writer, organisation: str, now: datetime, chosen: dict[str, str | None]
) -> None:
    xml.open(ID, "Identification")
    xml.leaf(ID, "OrganisationReporting", organisation)
    xml.leaf(ID, "DateAndTimeOfCreation", _time(now))
    xml.leaf(ID, "ReportContext", str(chosen["report_context"]))
    xml.leaf(ID, "ReportUUID", str(uuid.uuid4()))
    xml.leaf(ID, "Confidentiality", str(chosen["confidentiality"]))
    if chosen["country"]:
        xml.open(ID, "Identifications")
        xml.open(BASE, "OrganisationContactInfo")
        xml.leaf(BASE, "Name", organisation)
        xml.leaf(BASE, "OrganisationID", organisation)
        xml.leaf(BASE, "Country", str(chosen["country"]))
        xml.close(BASE, "OrganisationContactInfo")
        xml.close(ID, "Identifications")
    xml.close(ID, "Identification")


def _by_period(
    request: ExportRequest, start: datetime, end: datetime
) -> dict[tuple[datetime, datetime], list[tuple[Station, Reading]]]:
    """The window's readings of every chosen station, grouped by measuring period."""
    groups: dict[tuple[datetime, datetime], list[tuple[Station, Reading]]] = defaultdict(list)
    for station in request.stations:
        for reading in request.store.readings(station.station_id, start, end):
            seconds = reading.interval_s or station.interval_s
            finish = reading.time.replace(microsecond=0)
            groups[(finish - timedelta(seconds=seconds), finish)].append((station, reading))
    return groups


def _dose_rate(
    xml: _Writer,
    begin: datetime,
    end: datetime,
    measured: list[tuple[Station, Reading]],
    chosen: dict[str, str | None],
) -> None:
    xml.open(MEAS, "DoseRate")
    xml.leaf(MEAS, "DoseRateType", "Gamma")
    xml.open(MEAS, "MeasuringPeriod")
    xml.leaf(MEAS, "StartTime", _time(begin))
    xml.leaf(MEAS, "EndTime", _time(end))
    xml.close(MEAS, "MeasuringPeriod")
    xml.leaf(MEAS, "ApparatusType", str(chosen["apparatus_type"]))
    xml.open(MEAS, "Measurements")
    for station, reading in measured:
        xml.open(MEAS, "Measurement")
        if reading.lat is not None and reading.lon is not None:
            xml.open(LOC, "Location")
            _coordinates(xml, reading.lat, reading.lon, reading.altitude_m)
            xml.close(LOC, "Location")
        else:
            xml.leaf(LOC, "Location", ref=location_id(station.station_id))
        xml.leaf(MEAS, "Value", _number(sv_per_s(reading.dose_rate_nsv_h)), Unit="Sv/s")
        if reading.uncertainty_nsv_h is not None and math.isfinite(reading.uncertainty_nsv_h):
            xml.leaf(MEAS, "Uncertainty", _number(sv_per_s(reading.uncertainty_nsv_h)), Unit="Sv/s")
        xml.leaf(MEAS, "Validated", str(chosen["validated"]))
        xml.close(MEAS, "Measurement")
    xml.close(MEAS, "Measurements")
    xml.close(MEAS, "DoseRate")


def _location(xml: _Writer, station: Station) -> None:
    xml.open(LOC, "Location", id=location_id(station.station_id))
    xml.leaf(LOC, "Name", station.name)
    _coordinates(xml, station.lat, station.lon, station.elevation_m)
    xml.close(LOC, "Location")


def _coordinates(xml: _Writer, lat: float, lon: float, height: float | None) -> None:
    xml.open(LOC, "GeographicCoordinates")
    xml.leaf(LOC, "Latitude", _degrees(lat))
    xml.leaf(LOC, "Longitude", _longitude(lon))
    if height is not None and math.isfinite(height):
        xml.leaf(LOC, "Height", f"{height:.2f}", Above="Sea", Unit="m")
    xml.close(LOC, "GeographicCoordinates")


EXPORTER = Exporter(
    name="irix",
    description="IAEA IRIX 1.0 XML report: gamma dose rates in Sv/s by measuring period",
    write=write,
    options=frozenset(DEFAULTS),
)
