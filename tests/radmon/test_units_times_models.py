from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from radmon.errors import InputError
from radmon.models import (
    LatestReading,
    Reading,
    ReadingRow,
    Severity,
    Station,
    parse_reading,
    reading_row,
    trusted,
    trusted_is_exact,
)
from radmon.times import parse_time
from radmon.units import to_nsv_h

STATION = Station(station_id="QN001", name="Hạ Long 1", lat=20.95, lon=107.08)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (105.2, "nSv/h", 105.2),
        (0.1052, "uSv/h", 105.2),
        (0.1052, "µSv/h", 105.2),  # micro sign U+00B5
        (0.1052, "μSv/h", 105.2),  # Greek mu U+03BC
        (0.0001052, "mSv/h", 105.2),
        (1.052e-7, "Sv/h", 105.2),
        (105.2, " NSV/H ", 105.2),
    ],
)
def test_dose_rate_units_convert_to_nsv_h(value: float, unit: str, expected: float) -> None:
    assert to_nsv_h(value, unit) == pytest.approx(expected)


def test_counting_units_need_and_use_the_probe_sensitivity() -> None:
    with pytest.raises(InputError, match="sensitivity"):
        to_nsv_h(10, "cps")
    # 10 cps on a probe of 100 cps per µSv/h is 0.1 µSv/h
    assert to_nsv_h(10, "cps", 100) == pytest.approx(100.0)
    assert to_nsv_h(600, "cpm", 100) == pytest.approx(100.0)


@pytest.mark.parametrize("unit", ["nGy/h", "mR/h", "", "Bq"])
def test_unknown_units_are_rejected_by_name(unit: str) -> None:
    with pytest.raises(InputError, match=repr(unit)):
        to_nsv_h(1.0, unit)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "12", None, True])
def test_non_numbers_are_rejected(value: object) -> None:
    with pytest.raises(InputError):
        to_nsv_h(value, "nSv/h")  # type: ignore[arg-type]


def test_times_become_aware_utc() -> None:
    expected = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    assert parse_time("2026-11-21T03:00:00Z") == expected
    assert parse_time("2026-11-21T10:00:00+07:00") == expected
    assert parse_time(expected.timestamp()) == expected
    assert parse_time(int(expected.timestamp())) == expected


def test_naive_time_needs_the_station_zone() -> None:
    with pytest.raises(InputError, match="no zone"):
        parse_time("2026-11-21T10:00:00")
    # Vietnam is UTC+7: 10:00 local is 03:00 UTC, never a silent 7-hour shift.
    local = parse_time("2026-11-21T10:00:00", "Asia/Ho_Chi_Minh")
    assert local == datetime(2026, 11, 21, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", [], float("nan"), 1e20])
def test_bad_times_are_rejected(value: object) -> None:
    with pytest.raises(InputError):
        parse_time(value)


def test_parse_reading_converts_once_and_keeps_optional_fields() -> None:
    reading = parse_reading(
        {
            "time": "2026-11-21T03:00:00Z",
            "dose_rate": 0.1052,
            "unit": "uSv/h",
            "uncertainty": 0.005,
            "precip_mm_h": 2.5,
            "battery_v": 12.6,
        },
        STATION,
    )
    assert reading.dose_rate_nsv_h == pytest.approx(105.2)
    assert reading.uncertainty_nsv_h == pytest.approx(5.0)
    assert reading.precip_mm_h == 2.5
    assert reading.battery_v == 12.6
    assert reading.time.tzinfo is not None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"time": "2026-11-21T03:00:00Z", "dose_rate": -5, "unit": "nSv/h"}, "dose_rate"),
        ({"time": "2026-11-21T03:00:00Z", "dose_rate": 1e12, "unit": "nSv/h"}, "dose_rate"),
        ({"time": "2026-11-21T03:00:00Z", "dose_rate": 100}, "unit"),
        ({"time": "2026-11-21T03:00:00Z", "dose_rate": 100, "unit": "R/h"}, "R/h"),
        ({"time": "2026-11-21T03:00:00", "dose_rate": 100, "unit": "nSv/h"}, "no zone"),
        ({"time": "2026-11-21T03:00:00Z", "dose_rate": 100, "unit": "nSv/h", "x": 1}, "x"),
        (
            {"time": "2026-11-21T03:00:00Z", "dose_rate": 1, "unit": "nSv/h", "precip_mm_h": -1},
            "precip_mm_h",
        ),
    ],
)
def test_parse_reading_rejects_with_a_reason(payload: dict, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        parse_reading(payload, STATION)


def test_station_validation() -> None:
    with pytest.raises(ValueError, match="station_id"):
        Station(station_id="QN/1", name="x", lat=0, lon=0)  # would break MQTT topics
    with pytest.raises(ValueError, match="not a known IANA zone"):
        Station(station_id="QN1", name="x", lat=0, lon=0, timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="lat"):
        Station(station_id="QN1", name="x", lat=91, lon=0)


def test_trusted_models_are_the_validated_ones() -> None:
    assert trusted_is_exact()  # else trusted() validates: right, but slower than it should be
    now = datetime(2026, 11, 21, 3, tzinfo=UTC)
    built = trusted(Reading, station_id="QN001", time=now, dose_rate_nsv_h=1.5)
    checked = Reading(station_id="QN001", time=now, dose_rate_nsv_h=1.5)
    assert built == checked and hash(built) == hash(checked)
    assert built.model_dump() == checked.model_dump()
    assert built.model_fields_set == checked.model_fields_set
    with pytest.raises(ValidationError):
        built.dose_rate_nsv_h = 2.0  # still frozen
    assert built.model_copy(update={"counts": 3}).counts == 3
    station = Station(station_id="QN001", name="Hạ Long", lat=20.95, lon=107.07)
    latest = trusted(LatestReading, station=station, time=now, severity=Severity.ALERT)
    assert latest == LatestReading(station=station, time=now, severity=Severity.ALERT)
    assert latest.dose_rate_nsv_h is None  # the default of a field not given


def test_a_reading_row_has_the_fields_of_a_reading_in_the_stores_column_order() -> None:
    """The ingest builds rows and the store copies them by position: a field added to
    Reading and not to ReadingRow (or in another order) would store values in wrong columns."""
    from radmon.store.schema import READING_COLUMNS, readings

    assert ReadingRow._fields == tuple(Reading.model_fields)
    assert tuple(c.name for c in readings.columns) == READING_COLUMNS
    full = Reading(
        station_id="QN001",
        time=datetime(2026, 11, 22, 6, tzinfo=UTC),
        dose_rate_nsv_h=101.5,
        uncertainty_nsv_h=2.0,
        counts=31_000,
        interval_s=600,
        precip_mm_h=0.4,
        battery_v=12.6,
        temperature_c=31.0,
        status=3,
        lat=21.0,
        lon=107.1,
        altitude_m=12.0,
    )
    row = reading_row(full)
    assert row == tuple(getattr(full, name) for name in READING_COLUMNS)
    assert row.model() == full and reading_row(row) is row
    bare = Reading(station_id="QN001", time=full.time, dose_rate_nsv_h=90.0)
    assert reading_row(bare).model().model_fields_set == bare.model_fields_set
