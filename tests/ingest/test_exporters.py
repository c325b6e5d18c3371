"""Exporters: the detection CSV round-trips through the importer; IRIX parses back in Sv/s."""

from __future__ import annotations

import csv
import io
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.exporters import EXPORTERS, export_readings
from ingest.importers import KINDS, ImportContext, import_file
from radmon.errors import InputError
from radmon.models import Reading, Station
from radmon.store import Store

T0 = datetime(2026, 11, 20, 16, 55, tzinfo=UTC)
START, END = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
HA_LONG = Station(
    station_id="QN001",
    name="Hạ Long <port> & bay",
    lat=20.95,
    lon=107.08,
    elevation_m=12.5,
    interval_s=600,
)
MONG_CAI = Station(station_id="QN002", name="Móng Cái", lat=21.52, lon=107.97, interval_s=600)
CAR = Station(station_id="bgeigie-7", name="bGeigie 7", lat=21.0, lon=107.0, interval_s=5)

NS = {
    "irix": "http://www.iaea.org/2012/IRIX/Format",
    "id": "http://www.iaea.org/2012/IRIX/Format/Identification",
    "base": "http://www.iaea.org/2012/IRIX/Format/Base",
    "meas": "http://www.iaea.org/2012/IRIX/Format/Measurements",
    "loc": "http://www.iaea.org/2012/IRIX/Format/Locations",
}


def readings() -> list[Reading]:
    fixed = [
        Reading(
            station_id=sid,
            time=T0 + timedelta(minutes=10 * i),
            dose_rate_nsv_h=base + i / 3,
            precip_mm_h=None if i % 2 else 0.1 * i,
        )
        for sid, base in (("QN001", 90.0), ("QN002", 360.0))
        for i in range(6)
    ]
    mobile = [
        Reading(
            station_id="bgeigie-7",
            time=T0 + timedelta(seconds=5 * i),
            dose_rate_nsv_h=1000.0,
            counts=4,
            interval_s=5.0,
            lat=21.0 + i / 1000,
            lon=107.0,
            altitude_m=20.0,
        )
        for i in range(3)
    ]
    return fixed + mobile


@pytest.fixture
def filled(store: Store) -> Store:
    store.upsert_stations([HA_LONG, MONG_CAI, CAR])
    assert store.write_readings(readings()) == 15
    return store


def export(store: Store, fmt: str, **kwargs: object) -> tuple[str, object]:
    out = io.StringIO()
    kwargs = {"start": START, "end": END, **kwargs}
    report = export_readings(store, fmt, out, **kwargs)
    return out.getvalue(), report


# -- CSV ----------------------------------------------------------------------------------------


def test_csv_export_is_the_detection_format(filled: Store) -> None:
    text, report = export(filled, "csv", stations=["QN002", "QN001"])

    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "time",
        "station_id",
        "dose_rate_nsv_h",
        "precip_mm_h",
        "lat",
        "lon",
        "altitude_m",
    ]
    assert (report.readings, report.stations) == (12, 2)
    assert [r[1] for r in rows[1:]] == ["QN002"] * 6 + ["QN001"] * 6  # station by station
    assert rows[1] == ["2026-11-20T16:55:00Z", "QN002", "360.0", "0.0", "", "", ""]
    assert rows[2] == ["2026-11-20T17:05:00Z", "QN002", repr(360 + 1 / 3), "", "", "", ""]
    assert all(r[0].endswith("Z") for r in rows[1:])


def test_csv_export_keeps_to_the_period_across_windows(store: Store) -> None:
    store.upsert_stations([MONG_CAI])
    hourly = [
        Reading(station_id="QN002", time=START + timedelta(hours=h), dose_rate_nsv_h=100 + h)
        for h in range(24 * 20)
    ]
    store.write_readings(hourly)

    text, report = export(
        store, "csv", start=START + timedelta(hours=5), end=START + timedelta(days=19)
    )

    times = [row[0] for row in list(csv.reader(io.StringIO(text)))[1:]]
    assert report.readings == len(times) == 24 * 19 - 5
    assert times[0] == "2026-11-01T05:00:00Z" and times[-1] == "2026-11-19T23:00:00Z"
    assert len(set(times)) == len(times)


def test_csv_round_trip_gives_the_same_readings(filled: Store, tmp_path: Path) -> None:
    text, _ = export(filled, "csv")
    ctx = ImportContext(
        kind="csv",
        file_name="export.csv",
        path="export.csv",
        received_at=datetime.now(UTC),
        stations={s.station_id: s for s in filled.stations()},
    )

    back = list(KINDS["csv"].parse(io.StringIO(text, newline=""), ctx))

    def key(r: Reading) -> tuple:  # a survey car's positions survive the round trip too
        return (r.station_id, r.time, r.dose_rate_nsv_h, r.precip_mm_h, r.lat, r.lon, r.altitude_m)

    assert sorted(map(key, back)) == sorted(map(key, readings()))
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8")
    report = import_file(filled, "csv", path)
    assert (report.stored, report.duplicates, report.rejected) == (0, 15, 0)


# -- IRIX ---------------------------------------------------------------------------------------


def test_irix_report_parses_back_with_values_in_sv_per_s(filled: Store) -> None:
    text, report = export(filled, "irix", country="VN")

    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == f"{{{NS['irix']}}}Report" and root.get("version") == "1.0"
    assert [child.tag.split("}")[1] for child in root] == [
        "Identification",
        "Measurements",
        "Locations",
    ]
    ident = root.find("id:Identification", NS)
    assert ident.findtext("id:OrganisationReporting", namespaces=NS) == filled.settings.site.name
    uuid.UUID(ident.findtext("id:ReportUUID", namespaces=NS))
    assert ident.findtext("id:ReportContext", namespaces=NS) == "Routine"
    assert ident.findtext("id:Confidentiality", namespaces=NS) == "For Authority Use Only"
    org = ident.find("id:Identifications/base:OrganisationContactInfo", NS)
    assert org.findtext("base:Country", namespaces=NS) == "VN"
    datetime.fromisoformat(ident.findtext("id:DateAndTimeOfCreation", namespaces=NS))

    doses = root.findall("meas:Measurements/meas:DoseRate", NS)
    assert report.readings == 15 and report.stations == 3
    # one data set per measuring period: 6 ten-minute periods shared by QN001 and QN002,
    # 3 five-second periods of the mobile probe (the first shares its end with a fixed one)
    assert len(doses) == 9
    values: dict[tuple[str, str], float] = {}
    for dose in doses:
        assert dose.findtext("meas:DoseRateType", namespaces=NS) == "Gamma"
        end = dose.findtext("meas:MeasuringPeriod/meas:EndTime", namespaces=NS)
        start = dose.findtext("meas:MeasuringPeriod/meas:StartTime", namespaces=NS)
        assert datetime.fromisoformat(start) < datetime.fromisoformat(end)
        for m in dose.findall("meas:Measurements/meas:Measurement", NS):
            value = m.find("meas:Value", NS)
            assert value.get("Unit") == "Sv/s"
            assert m.findtext("meas:Validated", namespaces=NS) == "Not Validated"
            where = m.find("loc:Location", NS)
            values[(where.get("ref") or where.findtext(".//loc:Latitude", namespaces=NS), end)] = (
                float(value.text)
            )
    assert values[("st-QN002", "2026-11-20T16:55:00Z")] == pytest.approx(1e-10)  # 360 nSv/h
    assert values[("st-QN001", "2026-11-20T17:05:00Z")] == pytest.approx((90 + 1 / 3) * 1e-9 / 3600)
    assert values[("21.001000", "2026-11-20T16:55:05Z")] == pytest.approx(1e-6 / 3600)

    locations = {loc.get("id"): loc for loc in root.findall("loc:Locations/loc:Location", NS)}
    assert set(locations) == {"st-QN001", "st-QN002"}  # the mobile probe's positions are inline
    ha_long = locations["st-QN001"]
    assert ha_long.findtext("loc:Name", namespaces=NS) == "Hạ Long <port> & bay"
    assert float(ha_long.findtext("loc:GeographicCoordinates/loc:Latitude", namespaces=NS)) == 20.95
    height = ha_long.find("loc:GeographicCoordinates/loc:Height", NS)
    assert (float(height.text), height.get("Above"), height.get("Unit")) == (12.5, "Sea", "m")


def test_irix_periods_follow_each_reading_interval(filled: Store) -> None:
    text, _ = export(filled, "irix", stations=["QN001"])

    root = ET.fromstring(text.encode("utf-8"))
    periods = [
        (
            d.findtext("meas:MeasuringPeriod/meas:StartTime", namespaces=NS),
            d.findtext("meas:MeasuringPeriod/meas:EndTime", namespaces=NS),
        )
        for d in root.findall("meas:Measurements/meas:DoseRate", NS)
    ]
    assert periods[0] == ("2026-11-20T16:45:00Z", "2026-11-20T16:55:00Z")
    assert len(periods) == 6
    assert root.find("id:Identification/id:Identifications", NS) is None  # no country given


def test_irix_reports_are_unique_and_an_empty_period_is_still_well_formed(store: Store) -> None:
    store.upsert_stations([MONG_CAI])
    first, report = export(store, "irix")
    second, _ = export(store, "irix")

    ids = [
        ET.fromstring(t.encode()).findtext("id:Identification/id:ReportUUID", namespaces=NS)
        for t in (first, second)
    ]
    assert ids[0] != ids[1]
    root = ET.fromstring(first.encode())
    assert root.findall("meas:Measurements/meas:DoseRate", NS) == []
    assert root.find("loc:Locations", NS) is None  # the schema wants at least one Location
    assert report.readings == 0


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"validated": "Maybe"}, "option validated"),
        ({"apparatus_type": "Geiger"}, "option apparatus_type"),
        ({"country": "Vietnam"}, "option country"),
        ({"colour": "red"}, "has no option colour"),
    ],
)
def test_irix_options_are_checked(filled: Store, options: dict, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        export(filled, "irix", **options)


def test_irix_options_change_the_report(filled: Store) -> None:
    text, _ = export(
        filled,
        "irix",
        validated="Validated",
        apparatus_type="Gamma Geiger Muller Tube",
        report_context="Exercise",
    )

    root = ET.fromstring(text.encode())
    assert root.findtext("id:Identification/id:ReportContext", namespaces=NS) == "Exercise"
    dose = root.find("meas:Measurements/meas:DoseRate", NS)
    assert dose.findtext("meas:ApparatusType", namespaces=NS) == "Gamma Geiger Muller Tube"
    assert {v.text for v in root.iterfind(".//meas:Validated", NS)} == {"Validated"}


# -- requests -----------------------------------------------------------------------------------


def test_bad_export_requests_are_input_errors(filled: Store) -> None:
    naive = datetime(2026, 11, 1)
    with pytest.raises(InputError, match="unknown export format 'pdf'"):
        export(filled, "pdf")
    with pytest.raises(InputError, match="needs times with a zone"):
        export(filled, "csv", start=naive)
    with pytest.raises(InputError, match="period is empty"):
        export(filled, "csv", start=END, end=START)
    with pytest.raises(InputError, match="unknown station"):
        export(filled, "csv", stations=["QN001", "QN404"])
    with pytest.raises(InputError, match="has no option"):
        export(filled, "csv", country="VN")


def test_registry_and_a_sparse_thousand_years(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every 7-day (CSV) or 1-day (IRIX) window was queried: 42 s for three readings.
    assert set(EXPORTERS) == {"csv", "irix"}
    store.upsert_stations([HA_LONG, MONG_CAI])
    far = [
        Reading(station_id="QN001", time=datetime(1950, 1, 1, tzinfo=UTC), dose_rate_nsv_h=90),
        Reading(station_id="QN002", time=datetime(2026, 11, 3, tzinfo=UTC), dose_rate_nsv_h=91),
        Reading(station_id="QN001", time=datetime(2900, 5, 5, tzinfo=UTC), dose_rate_nsv_h=92),
    ]
    store.write_readings(far)
    span = {"start": datetime(1900, 1, 1, tzinfo=UTC), "end": datetime(2999, 1, 1, tzinfo=UTC)}
    asked: list[datetime] = []
    read = store.readings
    monkeypatch.setattr(store, "readings", lambda sid, a, b: asked.append(a) or read(sid, a, b))
    text, report = export(store, "csv", **span)
    assert report.readings == 3 and text.count("\n") == 4
    text, report = export(store, "irix", **span)
    assert report.readings == 3 and text.count("DoseRate>") >= 3
    assert len(asked) < 30  # windows with readings and the leaps between them, not 57,000


def test_irix_longitude_stays_below_180_after_rounding() -> None:
    from ingest.exporters.irix import _longitude

    assert _longitude(179.9999999) == "-180.000000"  # was 180.000000, outside [-180, 180)
    assert _longitude(179.999999) == "179.999999"
    assert _longitude(-180.0) == "-180.000000"
