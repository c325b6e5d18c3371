"""File importers: good lines stored once, every bad line dead-lettered with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.importers import KINDS, ImportContext, import_file
from ingest.importers.bgeigie import checksum
from radmon.errors import InputError
from radmon.models import DeadLetter, Reading, Station
from radmon.store import Store

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
FAR = datetime(2030, 1, 1, tzinfo=UTC)
ZONED = Station(
    station_id="QN001", name="Hạ Long", lat=20.95, lon=107.08, timezone="Asia/Ho_Chi_Minh"
)
PLAIN = Station(station_id="QN002", name="Móng Cái", lat=21.52, lon=107.97)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def context(kind: str, stations: list[Station] | None = None, **options: object) -> ImportContext:
    return ImportContext(
        kind=kind,
        file_name="sample",
        path="sample",
        received_at=datetime(2026, 12, 1, tzinfo=UTC),  # after every sample's readings
        stations={s.station_id: s for s in stations or []},
        options=options,
    )


def parse(kind: str, text: str, stations: list[Station] | None = None, **options: object):
    ctx = context(kind, stations, **options)
    return list(KINDS[kind].parse(text.splitlines(keepends=True), ctx)), ctx


def letters(items: list) -> list[DeadLetter]:
    return [i for i in items if isinstance(i, DeadLetter)]


def readings_of(items: list) -> list[Reading]:
    return [i for i in items if isinstance(i, Reading)]


def stored(store: Store, station_id: str) -> list[Reading]:
    return store.readings(station_id, EPOCH, FAR)


# -- detection CSV ------------------------------------------------------------------------------

CSV_FILE = """time,station_id,dose_rate_nsv_h,precip_mm_h,operator
2026-11-21T03:10:00Z,QN002,101.5,0.0,an
2026-11-21T03:00:00Z,QN002,abc,,binh
2026-11-21T10:00:00,QN001,98.25,,chi
2026-11-21T03:00:00,QN002,99,,dung
2026-11-21T03:00:00Z,QN999,99,,em
2026-11-21T03:20:00Z,QN002,-5,,giang

2026-11-21T03:30:00Z,QN002,120,4.5,hoa
2026-11-21T03:40:00+07:00,QN002
"""


def test_csv_keeps_good_rows_and_dead_letters_each_bad_one(store: Store, tmp_path: Path) -> None:
    store.upsert_stations([ZONED, PLAIN])
    path = write(tmp_path, "readings.csv", CSV_FILE)

    report = import_file(store, "csv", path)

    assert (report.read, report.readings, report.stored, report.rejected) == (8, 3, 3, 5)
    assert report.duplicates == 0 and report.stations_upserted == 0
    assert [(r.time, r.dose_rate_nsv_h, r.precip_mm_h) for r in stored(store, "QN002")] == [
        (datetime(2026, 11, 21, 3, 10, tzinfo=UTC), 101.5, 0.0),
        (datetime(2026, 11, 21, 3, 30, tzinfo=UTC), 120.0, 4.5),
    ]
    # a naive time is read in the station's configured zone: 10:00 at UTC+7 is 03:00 UTC
    assert [(r.time, r.dose_rate_nsv_h) for r in stored(store, "QN001")] == [
        (datetime(2026, 11, 21, 3, 0, tzinfo=UTC), 98.25)
    ]
    found = {d.origin: d for d in store.dead_letters(source="import:csv")}
    assert set(found) == {
        "readings.csv:3",
        "readings.csv:5",
        "readings.csv:6",
        "readings.csv:7",
        "readings.csv:10",
    }
    assert found["readings.csv:3"].reason == (
        "line 3, field dose_rate_nsv_h: 'abc' is not a number"
    )
    assert found["readings.csv:3"].payload == "2026-11-21T03:00:00Z,QN002,abc,,binh"
    assert found["readings.csv:3"].station_id == "QN002"
    assert "has no zone" in found["readings.csv:5"].reason
    assert found["readings.csv:5"].reason.startswith("line 5, field time:")
    assert "unknown station 'QN999'" in found["readings.csv:6"].reason
    assert found["readings.csv:7"].reason.startswith("line 7, field dose_rate_nsv_h:")
    assert found["readings.csv:10"].reason == "line 10, field dose_rate_nsv_h: empty"


def test_csv_reimport_adds_nothing(store: Store, tmp_path: Path) -> None:
    store.upsert_stations([ZONED, PLAIN])
    path = write(tmp_path, "readings.csv", CSV_FILE)
    first = import_file(store, "csv", path)

    again = import_file(store, "csv", path, batch_size=2)

    assert first.stored == 3 and first.dead_letters_kept == 5
    assert (again.stored, again.duplicates, again.rejected) == (0, 3, 5)
    assert again.dead_letters_kept == 0
    assert len(stored(store, "QN002")) == 2
    assert store.dead_letter_counts() == {"import:csv": 5}


def test_csv_rows_repeated_in_one_file_count_as_duplicates(store: Store, tmp_path: Path) -> None:
    store.upsert_stations([PLAIN])
    row = "2026-11-21T03:00:00Z,QN002,100\n"
    path = write(tmp_path, "twice.csv", "time,station_id,dose_rate_nsv_h\n" + row * 3)

    report = import_file(store, "csv", path, batch_size=2)

    assert (report.readings, report.stored, report.duplicates) == (3, 1, 2)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("station_id,dose_rate_nsv_h\nQN002,1\n", "missing required column(s) time"),
        ("", "empty"),
        ("when,where,what\n", "missing required column(s) time, station_id, dose_rate_nsv_h"),
    ],
)
def test_csv_without_its_header_stops_before_anything_is_stored(
    store: Store, tmp_path: Path, text: str, needle: str
) -> None:
    store.upsert_stations([PLAIN])
    path = write(tmp_path, "bad.csv", text)

    with pytest.raises(InputError, match=r"bad\.csv") as caught:
        import_file(store, "csv", path)

    assert needle in str(caught.value)
    assert store.dead_letter_counts() == {}


def test_whole_file_problems_are_input_errors_naming_the_file(store: Store, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(InputError, match=r"nowhere\.csv: cannot read"):
        import_file(store, "csv", missing)
    with pytest.raises(InputError, match="unknown import format 'xls'"):
        import_file(store, "xls", write(tmp_path, "a.xls", "x"))
    with pytest.raises(InputError, match="has no option cpm_per_usv_h"):
        import_file(store, "csv", write(tmp_path, "a.csv", "x"), cpm_per_usv_h=300)
    with pytest.raises(InputError, match="cpm_per_usv_h"):
        import_file(store, "bgeigie", write(tmp_path, "a.log", "x"), cpm_per_usv_h=-1)


def test_csv_a_line_the_csv_reader_refuses_does_not_stop_the_file() -> None:
    huge = "x" * 200_000
    text = f"time,station_id,dose_rate_nsv_h\n{huge},QN002,1\n2026-11-21T03:00:00Z,QN002,7\n"

    items, _ = parse("csv", text, [PLAIN])

    assert [r.dose_rate_nsv_h for r in readings_of(items)] == [7.0]
    (letter,) = letters(items)
    assert letter.origin == "sample:2" and "not valid CSV" in letter.reason


def test_csv_a_stray_quote_spoils_its_own_line_only() -> None:
    # One unclosed quote swallowed every following row into one dead letter, up to the csv
    # module's field limit (4,000 rows of 20,000) or the end of the file (all of them).
    rows = [
        f"2026-11-{d:02d}T{h:02d}:{m:02d}:00Z,QN002,{100 + m}"
        for d in range(21, 26)
        for h in range(24)
        for m in range(60)
    ]
    for count in (200, len(rows)):
        text = 'time,station_id,dose_rate_nsv_h\n2026-11-20T00:00:00Z,QN002,"100\n'
        text += "\n".join(rows[:count]) + "\n"
        items, _ = parse("csv", text, [PLAIN])
        assert len(readings_of(items)) == count
        (letter,) = letters(items)
        assert letter.origin == "sample:2" and "quote" in letter.reason


@pytest.mark.parametrize(
    ("kind", "line"),
    [
        ("csv", "2026-12-02T00:00:00Z,QN002,100"),
        ("bgeigie", "BGEIGIE"),
        ("eurdep", "\\QN002,2026-12-02T00:00Z,100,NSV/H,T-GAMMA;"),
    ],
)
def test_a_reading_from_the_future_is_refused_by_every_importer(kind: str, line: str) -> None:
    # MQTT and HTTP refused it; the files stored it, to stay the station's latest for years
    header = {
        "csv": "time,station_id,dose_rate_nsv_h\n",
        "bgeigie": "",
        "eurdep": "\\BEGIN_RADIOLOGICAL;\n\\FIELD_LIST LOCALITY_CODE,END,VALUE,UNIT,NUCLIDE;\n",
    }[kind]
    if kind == "bgeigie":
        line = bgeigie(device="2408", time="2026-12-02T00:00:00Z")
    station = PLAIN if kind != "bgeigie" else None
    items, _ = parse(kind, header + line + "\n", [station] if station else [])
    (letter,) = letters(items)
    assert readings_of(items) == [] and "ahead of the server clock" in letter.reason


def test_csv_a_row_with_more_fields_than_the_header_is_refused() -> None:
    # "105,2" (a decimal comma) stored 105 and moved the 2 into the next column.
    text = "time,station_id,dose_rate_nsv_h\n2026-11-21T03:00:00Z,QN002,105,2\n"
    items, _ = parse("csv", text, [PLAIN])
    (letter,) = letters(items)
    assert readings_of(items) == [] and "4 fields; the header names 3" in letter.reason


def test_csv_quoted_fields_and_a_nul_byte(store: Store, tmp_path: Path) -> None:
    store.upsert_stations([PLAIN])
    text = (
        'time,station_id,dose_rate_nsv_h,note\n"2026-11-21T03:00:00Z","QN002","88.5","a\nb"\n'
        "2026-11-21T03:10:00Z,QN002,1\x002,\n"
    )
    report = import_file(store, "csv", write(tmp_path, "q.csv", text))

    assert (report.stored, report.rejected) == (1, 1)
    (letter,) = store.dead_letters()
    assert letter.origin == "q.csv:4" and "\\x00" in letter.payload


# -- bGeigie -----------------------------------------------------------------------------------


def bgeigie(
    *,
    device: str = "2408",
    time: str = "2022-03-20T15:30:42Z",
    cpm: str = "334",
    radiation: str = "A",
    lat: str = "5003.1563",
    ns: str = "N",
    lon: str = "01430.9260",
    ew: str = "E",
    alt: str = "242.80",
    gps: str = "A",
    sentence: str = "BNRDD",
) -> str:
    body = (
        f"{sentence},{device},{time},{cpm},4,42,{radiation},{lat},{ns},{lon},{ew},{alt},{gps},4,210"
    )
    return f"${body}*{checksum(body):02X}"


def test_bgeigie_checksum_matches_a_published_log_line() -> None:
    # a line from a published Safecast drive log
    line = "$BNRDD,2408,2022-03-20T15:30:42Z,34,4,42,A,5003.1563,N,01430.9260,E,242.80,A,4,210*4B"
    items, _ = parse("bgeigie", line + "\n", [])

    (station, reading) = items
    assert isinstance(station, Station) and isinstance(reading, Reading)
    assert reading.dose_rate_nsv_h == pytest.approx(34 / 334 * 1000)


def test_bgeigie_cpm_to_nsv_h_is_exact_and_the_factor_can_be_changed() -> None:
    items, _ = parse("bgeigie", bgeigie(cpm="334") + "\n", [])
    assert readings_of(items)[0].dose_rate_nsv_h == 1000.0

    items, _ = parse("bgeigie", bgeigie(cpm="334") + "\n", [], cpm_per_usv_h=100)
    assert readings_of(items)[0].dose_rate_nsv_h == pytest.approx(3340.0)


def test_bgeigie_positions_in_decimal_degrees_south_and_west_negative() -> None:
    text = "\n".join(
        [
            bgeigie(time="2022-03-20T15:30:42Z"),
            bgeigie(time="2022-03-20T15:30:47Z", lat="3345.0000", ns="S", lon="15130.0000", ew="W"),
            bgeigie(time="2022-03-20T15:30:52Z", gps="V", lat="", ns="", lon="", ew="", alt=""),
        ]
    )
    items, _ = parse("bgeigie", text, [])

    first, second, no_fix = readings_of(items)
    assert first.lat == pytest.approx(50 + 3.1563 / 60)
    assert first.lon == pytest.approx(14 + 30.9260 / 60)
    assert first.altitude_m == 242.8
    assert (second.lat, second.lon) == (pytest.approx(-33.75), pytest.approx(-151.5))
    assert (no_fix.lat, no_fix.lon, no_fix.altitude_m) == (None, None, None)
    assert (first.counts, first.interval_s) == (4, 5.0)
    assert letters(items) == []


def test_bgeigie_bad_lines_are_dead_lettered_with_their_reason() -> None:
    good = bgeigie()
    corrupt = good[:-2] + ("00" if not good.endswith("00") else "01")
    lines = [
        "# NEW LOG",
        "# format=1.2.0",
        good,
        corrupt,
        bgeigie(time="2022-03-20T15:31:00Z", radiation="V"),
        bgeigie(time="2022-03-20T15:31:05Z", cpm="lots"),
        bgeigie(time="2022-03-20T15:31:10Z", lat="5075.0000"),
        bgeigie(time="2022-03-20T15:31:15Z", sentence="BNXSTS"),
        "$BNRDD,2408,2022-03-20T15:31:20Z,34,4,42,A",
        "garbage from a serial line",
        bgeigie(time="2022-03-20T15:31:25"),
    ]
    items, _ = parse("bgeigie", "\n".join(lines) + "\n", [])

    assert len(readings_of(items)) == 1
    reasons = {int(d.origin.split(":")[1]): d.reason for d in letters(items)}
    assert reasons[4].startswith("line 4: checksum mismatch")
    assert "void (V)" in reasons[5]
    assert reasons[6] == "line 6, field CPM: 'lots' is not a whole number of counts"
    assert reasons[7].startswith("line 7, field latitude:")
    assert "is not a bGeigie reading" in reasons[8]
    assert "no NMEA checksum" in reasons[9]
    assert "not a bGeigie log line" in reasons[10]
    assert reasons[11].startswith("line 11, field time:") and "has no zone" in reasons[11]
    assert set(reasons) == {4, 5, 6, 7, 8, 9, 10, 11}
    owners = {int(d.origin.split(":")[1]): d.station_id for d in letters(items)}
    assert {owners[n] for n in (5, 6, 7, 11)} == {"bgeigie-2408"}
    assert {owners[n] for n in (4, 8, 9, 10)} == {None}


def test_bgeigie_station_created_at_the_first_fix_and_earlier_readings_kept(
    store: Store, tmp_path: Path
) -> None:
    lines = [
        bgeigie(time="2022-03-20T15:30:32Z", gps="V", lat="", ns="", lon="", ew="", alt=""),
        bgeigie(time="2022-03-20T15:30:37Z", gps="V", lat="", ns="", lon="", ew="", alt=""),
        bgeigie(time="2022-03-20T15:30:42Z"),
        bgeigie(time="2022-03-20T15:30:47Z", lat="5003.2000"),
        # a second device that never gets a fix: nothing to place its station with
        bgeigie(device="77", gps="V", lat="", ns="", lon="", ew="", alt=""),
    ]
    path = write(tmp_path, "drive.log", "\n".join(lines) + "\n")

    report = import_file(store, "bgeigie", path)

    assert (report.stored, report.rejected, report.stations_upserted) == (4, 1, 1)
    station = store.station("bgeigie-2408")
    assert station is not None
    assert (station.name, station.probe_model, station.interval_s) == ("bGeigie 2408", "bGeigie", 5)
    assert station.lat == pytest.approx(50 + 3.1563 / 60)  # the first fix, not the later one
    assert station.elevation_m == 242.8
    assert station.sensitivity_cps_per_usv_h == pytest.approx(334 / 60)
    assert len(stored(store, "bgeigie-2408")) == 4
    (letter,) = store.dead_letters()
    assert letter.origin == "drive.log:5" and letter.station_id == "bgeigie-77"
    assert "no GPS fix" in letter.reason and "bgeigie-77" in letter.reason

    again = import_file(store, "bgeigie", path)
    assert (again.stored, again.duplicates, again.stations_upserted) == (0, 4, 0)


def test_bgeigie_keeps_a_configured_station_and_uses_its_zone(store: Store, tmp_path: Path) -> None:
    car = Station(
        station_id="bgeigie-2408",
        name="Survey car 1",
        lat=21.0,
        lon=105.8,
        timezone="Asia/Ho_Chi_Minh",
    )
    store.upsert_stations([car])
    path = write(tmp_path, "car.log", bgeigie(time="2022-03-20T22:30:42") + "\n")

    report = import_file(store, "bgeigie", path)

    assert (report.stored, report.stations_upserted) == (1, 0)
    assert store.station("bgeigie-2408").name == "Survey car 1"
    assert stored(store, "bgeigie-2408")[0].time == datetime(2022, 3, 20, 15, 30, 42, tzinfo=UTC)


def test_bgeigie_converts_with_a_known_device_s_own_calibration() -> None:
    # a device registered with its tube's 2.5 cps per µSv/h was converted at 334 CPM per µSv/h
    car = Station(
        station_id="bgeigie-2408", name="Car", lat=21.0, lon=105.8, sensitivity_cps_per_usv_h=2.5
    )
    items, _ = parse("bgeigie", bgeigie(cpm="150") + "\n", [car])
    assert [r.dose_rate_nsv_h for r in readings_of(items)] == [pytest.approx(1000.0)]
    items, _ = parse("bgeigie", bgeigie(cpm="300") + "\n", [car], cpm_per_usv_h=300)
    assert [r.dose_rate_nsv_h for r in readings_of(items)] == [pytest.approx(1000.0)]  # option


# -- EURDEP ------------------------------------------------------------------------------------

EURDEP_FILE = r"""\BEGIN_EURDEP;

\BEGIN_HEADER;
\IMPORTANCE NORMAL;
\ORIGINATOR Test Authority / data@example.org;
\MESSAGE_ID XX_20261121000000;
\SENT 2026-11-21T00:00Z;
\FORMAT_VERSION 2.0;
\END_HEADER;

\BEGIN_LOCALITY;
\FIELD_LIST LOCALITY_CODE,LOCALITY_NAME,LONGITUDE,LATITUDE,HEIGHT_ABOVE_SEA;
\XX0001, Reykjavik, W021.9019, N64.1276, 54;
\XX0002, "Höfn, harbour", E015.2135, 64.2691, 19;
\XX0003, Nowhere, W021.9019, N99.0000, 1;
\END_LOCALITY;

\BEGIN_COMMENT;
free text; with a semicolon, not a statement
\END_COMMENT;

\BEGIN_RADIOLOGICAL;
\FIELD_LIST  LOCALITY_CODE,VALUE,BEGIN,END,BACKGROUND,UNIT,VALIDATED,REMARKS;
\BEGIN_DEFAULT;
\SAMPLE_TYPE A5;
\NUCLIDE T-GAMMA;
\UNIT NSV/H;
\END_DEFAULT;
\XX0001,4.70E+01,2026-11-21T00:00Z,2026-11-21T00:10Z,5.00E+01,,1,"ok; fine";
\XX0001,5.10E+01,2026-11-21T00:10Z,2026-11-21T00:20Z,5.00E+01,!,-,-;
\XX0002,0.061,2026-11-21T00:00Z,2026-11-21T01:00Z,-,USV/H,0,;
\XX0002,61,2026-11-21T01:00Z,2026-11-21T02:00Z,-,NGY/H,0,;
\XX0002,abc,2026-11-21T02:00Z,2026-11-21T03:00Z,-,,0,;
\XX0001,900,2026-11-21T00:20Z,2026-11-21T00:30Z,-,,2,;
\XX0009,50,2026-11-21T00:00Z,2026-11-21T00:10Z,-,,1,;
\XX0001,50,2026-11-21T00:30Z,2026-11-21T00:40,-,,1,;
\XX0001,1,2,3,4,5,6,7,8,9;
\END_RADIOLOGICAL;

\BEGIN_RADIOLOGICAL;
\FIELD_LIST LOCALITY_CODE,BEGIN,END,NUCLIDE,SAMPLE_TYPE,VALUE,UNIT;
\XX0001,2026-11-21T00:00Z,2026-11-21T01:00Z,CS-137,A11,0.3,MBQ/M3;
\END_RADIOLOGICAL;

\BEGIN_METEO;
\FIELD_LIST LOCALITY_CODE,BEGIN,END,METEO_TYPE,VALUE;
\XX0001,2026-11-21T00:00Z,2026-11-21T01:00Z,TEMPERATURE,+2.5;
\END_METEO;

\END_EURDEP;
\BEGIN_EURDEP;
\BEGIN_LOCALITY;
\FIELD_LIST LOCALITY_CODE,LOCALITY_NAME,LONGITUDE,LATITUDE,HEIGHT_ABOVE_SEA;
\XX0001, Reykjavik, W021.9019, N64.1276, 54;
\END_LOCALITY;
\BEGIN_RADIOLOGICAL;
\FIELD_LIST LOCALITY_CODE,VALUE,BEGIN,END,UNIT,NUCLIDE;
\XX0001,4.90E+01,2026-11-21T00:40Z,2026-11-21T00:50Z,nSv/h,t-gamma;
\END_RADIOLOGICAL;
\END_EURDEP;
"""


def test_eurdep_stations_and_gamma_dose_rates(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "IS20261121.EUR", EURDEP_FILE)

    report = import_file(store, "eurdep", path)

    assert report.stations_upserted == 2
    reykjavik, hofn = store.station("XX0001"), store.station("XX0002")
    assert (reykjavik.name, reykjavik.lat, reykjavik.lon) == ("Reykjavik", 64.1276, -21.9019)
    assert reykjavik.elevation_m == 54
    assert (hofn.name, hofn.lat, hofn.lon) == ("Höfn, harbour", 64.2691, 15.2135)
    assert store.station("XX0003") is None  # latitude 99 is refused
    # the time is END; the period's length is the interval; defaults fill empty and '!' values
    assert [(r.time, r.dose_rate_nsv_h, r.interval_s) for r in stored(store, "XX0001")] == [
        (datetime(2026, 11, 21, 0, 10, tzinfo=UTC), 47.0, 600.0),
        (datetime(2026, 11, 21, 0, 20, tzinfo=UTC), 51.0, 600.0),
        (datetime(2026, 11, 21, 0, 50, tzinfo=UTC), 49.0, 600.0),
    ]
    assert [(r.time, r.dose_rate_nsv_h) for r in stored(store, "XX0002")] == [
        (datetime(2026, 11, 21, 1, 0, tzinfo=UTC), pytest.approx(61.0))
    ]
    assert (report.stored, report.skipped) == (4, 1)
    reasons = {d.origin: d.reason for d in store.dead_letters(source="import:eurdep")}
    assert set(reasons) == {
        "IS20261121.EUR:15",
        "IS20261121.EUR:32",
        "IS20261121.EUR:33",
        "IS20261121.EUR:34",
        "IS20261121.EUR:35",
        "IS20261121.EUR:36",
        "IS20261121.EUR:37",
    }
    assert reasons["IS20261121.EUR:15"] == "line 15, field LATITUDE: 'N99.0000' is out of range"
    assert "air kerma" in reasons["IS20261121.EUR:32"]
    assert reasons["IS20261121.EUR:33"] == "line 33, field VALUE: 'abc' is not a number"
    assert "not plausible" in reasons["IS20261121.EUR:34"]
    assert "unknown locality 'XX0009'" in reasons["IS20261121.EUR:35"]
    assert "has no zone" in reasons["IS20261121.EUR:36"]
    assert "has 10 values; the FIELD_LIST names 8" in reasons["IS20261121.EUR:37"]
    assert report.read == report.readings + report.rejected + report.skipped == 4 + 7 + 1

    again = import_file(store, "eurdep", path)
    assert (again.stored, again.duplicates, again.stations_upserted) == (0, 4, 0)


def test_eurdep_locality_keeps_what_radmon_adds_to_a_station(store: Store, tmp_path: Path) -> None:
    store.upsert_stations(
        [Station(station_id="XX0001", name="old", lat=1, lon=2, timezone="Atlantic/Reykjavik")]
    )
    text = (
        "\\BEGIN_EURDEP;\n\\BEGIN_LOCALITY;\n\\FIELD_LIST LOCALITY_CODE,LATITUDE,LONGITUDE;\n"
        "\\XX0001,64.1,-21.9;\n\\END_LOCALITY;\n\\END_EURDEP;\n"
    )
    report = import_file(store, "eurdep", write(tmp_path, "loc.EUR", text))

    station = store.station("XX0001")
    assert report.stations_upserted == 1
    assert (station.lat, station.lon, station.name) == (64.1, -21.9, "XX0001")
    assert station.timezone == "Atlantic/Reykjavik"


def test_eurdep_unterminated_and_stray_lines() -> None:
    text = (
        "\\BEGIN_EURDEP;\nthis is not eurdep\n\\BEGIN_RADIOLOGICAL;\n"
        "\\FIELD_LIST LOCALITY_CODE,VALUE,END,UNIT,NUCLIDE;\n"
        "\\XX0001,50,2026-11-21T00:10Z,NSV/H,T-GAMMA\n"
    )
    items, _ = parse("eurdep", text, [PLAIN.model_copy(update={"station_id": "XX0001"})])

    assert readings_of(items) == []
    reasons = sorted(d.reason for d in letters(items))
    assert reasons == [
        "line 2: not a EURDEP statement ('\\...;')",
        "line 5: statement has no closing ';'",
    ]


def test_eurdep_a_lost_semicolon_or_stray_quote_spoils_one_record() -> None:
    # A record without its ';' ran into the next statement: "\\END_RADIOLOGICAL" became part
    # of its VALIDATED field (stored as valid), and a stray quote carried 64 KiB of records.
    head = "\\BEGIN_EURDEP;\n\\BEGIN_RADIOLOGICAL;\n"
    head += "\\FIELD_LIST LOCALITY_CODE,END,VALUE,UNIT,NUCLIDE,VALIDATED;\n"
    good = [f"\\XX0001,2026-11-21T{h:02d}:00Z,{50 + h},NSV/H,T-GAMMA,1;" for h in range(24)]
    station = [PLAIN.model_copy(update={"station_id": "XX0001"})]
    for bad in (
        '\\XX0001,2026-11-20T00:00Z,"49,NSV/H,T-GAMMA,1;',
        "\\XX0001,2026-11-20T00:00Z,9500,NSV/H,T-GAMMA,2",
    ):
        text = head + bad + "\n" + "\n".join(good) + "\n\\END_RADIOLOGICAL;\n\\END_EURDEP;\n"
        items, _ = parse("eurdep", text, station)
        assert len(readings_of(items)) == 24, bad
        (letter,) = letters(items)
        assert letter.reason == "line 4: statement has no closing ';'"
    text = head + "\\XX0001,2026-11-21T00:00Z,50,NSV/H,T-GAMMA,2 maybe;\n"
    items, _ = parse("eurdep", text, station)
    (letter,) = letters(items)
    assert readings_of(items) == [] and "VALIDATED" in letter.reason


def test_eurdep_names_its_own_field_in_a_refusal() -> None:
    # "field dose_rate_nsv_h" named radmon's field, not the file's VALUE
    text = (
        "\\BEGIN_RADIOLOGICAL;\n\\FIELD_LIST LOCALITY_CODE,END,VALUE,UNIT,NUCLIDE;\n"
        "\\XX0001,2026-11-21T00:00Z,-0.01,USV/H,T-GAMMA;\n"
    )
    items, _ = parse("eurdep", text, [PLAIN.model_copy(update={"station_id": "XX0001"})])
    (letter,) = letters(items)
    assert "field VALUE" in letter.reason and "-0.01 USV/H" in letter.reason


def test_eurdep_statement_split_over_lines_and_two_on_one_line() -> None:
    text = (
        "\\BEGIN_EURDEP;\\BEGIN_RADIOLOGICAL;\n"
        "\\FIELD_LIST LOCALITY_CODE,VALUE,\n END,UNIT,NUCLIDE;\n"
        "\\XX0001,50,\n2026-11-21T00:10Z,NSV/H,T-GAMMA;\n\\END_RADIOLOGICAL;\\END_EURDEP;\n"
    )
    items, _ = parse("eurdep", text, [PLAIN.model_copy(update={"station_id": "XX0001"})])

    (reading,) = items
    assert (reading.time, reading.dose_rate_nsv_h) == (
        datetime(2026, 11, 21, 0, 10, tzinfo=UTC),
        50.0,
    )


# -- robustness ------------------------------------------------------------------------------

NASTY = [
    "\x00\x00\x00",
    "$BNRDD,\x00,*00",
    "\\BEGIN_EURDEP;\x00",
    "é" * 70_000,
    "\ufffd\ufffd,QN002,1",
    "$" + "," * 100 + "*00",
]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_dead_letters_of_nasty_lines_can_be_kept(store: Store, tmp_path: Path, kind: str) -> None:
    store.upsert_stations([PLAIN])
    header = "time,station_id,dose_rate_nsv_h\n" if kind == "csv" else ""
    path = write(tmp_path, f"nasty.{kind}", header + "\n".join(NASTY) + "\n")
    (tmp_path / "bytes.bin").write_bytes(b"\xff\xfe\x80 not utf-8\n")

    report = import_file(store, kind, path)
    raw = import_file(store, kind, tmp_path / "bytes.bin") if kind != "csv" else None

    assert report.stored == 0 and report.rejected == report.read >= 4
    assert report.dead_letters_kept == report.rejected
    assert raw is None or raw.rejected == 1
    assert all(d.reason.startswith("line ") for d in store.dead_letters(limit=50))


_PIECES = st.sampled_from(
    [
        ",",
        ";",
        '"',
        "\\",
        "*",
        "$",
        "#",
        " ",
        "\t",
        "A",
        "V",
        "N",
        "S",
        "E",
        "W",
        "-",
        "!",
        "BNRDD",
        "BEGIN_",
        "END_",
        "EURDEP",
        "LOCALITY",
        "RADIOLOGICAL",
        "DEFAULT",
        "COMMENT",
        "FIELD_LIST",
        "LOCALITY_CODE",
        "VALUE",
        "END",
        "UNIT",
        "NUCLIDE",
        "T-GAMMA",
        "NSV/H",
        "QN002",
        "XX0001",
        "2026-11-21T03:00:00Z",
        "2026-11-21T03:00",
        "12",
        "-3",
        "1e308",
        "nan",
        "inf",
        "5003.1563",
        "99999.9",
        "\x00",
        "é",
        "\r",
    ]
)
_LINES = st.lists(
    st.one_of(st.text(max_size=60), st.lists(_PIECES, max_size=25).map("".join)), max_size=25
)
_STATIONS = [PLAIN, ZONED, Station(station_id="XX0001", name="x", lat=1, lon=1)]


def _check(kind: str, lines: list[str]) -> None:
    ctx = context(kind, _STATIONS)
    if kind == "csv":
        lines = ["time,station_id,dose_rate_nsv_h,precip_mm_h", *lines]
    items = list(KINDS[kind].parse([line + "\n" for line in lines], ctx))
    for item in items:
        assert isinstance(item, Reading | DeadLetter | Station)
        if isinstance(item, DeadLetter):
            assert item.reason.startswith("line ") and "\x00" not in item.payload


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=_LINES)
def test_fuzzed_csv_lines_never_escape_the_importer(lines: list[str]) -> None:
    _check("csv", lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=_LINES)
def test_fuzzed_eurdep_lines_never_escape_the_importer(lines: list[str]) -> None:
    _check("eurdep", ["\\BEGIN_EURDEP;", "\\BEGIN_RADIOLOGICAL;", *lines])
    _check(
        "eurdep", ["\\BEGIN_LOCALITY;", "\\FIELD_LIST LOCALITY_CODE,LATITUDE,LONGITUDE;", *lines]
    )


_FIELDS = st.lists(st.one_of(_PIECES, st.text(max_size=12)), min_size=0, max_size=17)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=_LINES, sentences=st.lists(_FIELDS, max_size=10))
def test_fuzzed_bgeigie_lines_never_escape_the_importer(
    lines: list[str], sentences: list[list[str]]
) -> None:
    # sentences with a correct checksum reach the field checks, not just the checksum test
    signed = []
    for fields in sentences:
        body = ",".join(["BNRDD", *fields])
        signed.append(f"${body}*{checksum(body):02X}")
    _check("bgeigie", [*lines, *signed])


def test_every_refused_line_is_one_dead_letter_and_good_lines_survive() -> None:
    good = [
        bgeigie(
            time=(datetime(2022, 3, 20, tzinfo=UTC) + timedelta(seconds=5 * i)).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
        )
        for i in range(20)
    ]
    mixed = [line for pair in zip(good, NASTY * 4, strict=False) for line in pair]

    items, _ = parse("bgeigie", "\n".join(mixed) + "\n", [])

    assert len(readings_of(items)) == 20
    assert len(letters(items)) == 20
