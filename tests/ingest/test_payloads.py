"""Decoding reading messages: every item ends up a reading or a dead letter, never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import OperationalError

from ingest.payloads import Context, decode_message
from ingest.stations import StationDirectory
from radmon.config import IngestSettings
from radmon.models import ReadingRow, Station, reading_row

NOW = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
STATIONS = [
    Station(station_id="QN001", name="Hạ Long", lat=20.95, lon=107.08),
    Station(
        station_id="QN002",
        name="Cẩm Phả",
        lat=21.0,
        lon=107.3,
        timezone="Asia/Ho_Chi_Minh",
        sensitivity_cps_per_usv_h=120.0,
    ),
]
LIMITS = IngestSettings(max_payload_bytes=4096, max_future_skew_s=300)


def _decode(payload: object, station_id: str = "QN001", raw: bytes | None = None):
    directory = StationDirectory(lambda: STATIONS)
    body = raw if raw is not None else json.dumps(payload).encode()
    return decode_message(body, station_id, directory, Context("mqtt", "t", NOW, LIMITS))


def test_a_single_object_and_a_batch_are_converted_once_to_nsv_h() -> None:
    one = _decode({"time": "2026-11-21T02:59:00Z", "dose_rate": 0.105, "unit": "µSv/h"})
    assert [r.dose_rate_nsv_h for r in one.readings] == [pytest.approx(105.0)]
    batch = _decode(
        [
            {"time": 1763693940, "dose_rate": 12.0, "unit": "cps"},
            {"time": "2026-11-21T09:58:00", "dose_rate": 110, "unit": "nSv/h"},
        ],
        station_id="QN002",
    )
    assert not batch.letters
    first, second = batch.readings
    assert first.dose_rate_nsv_h == pytest.approx(100.0)  # 12 cps / 120 cps per µSv/h
    assert second.time == datetime(2026, 11, 21, 2, 58, tzinfo=UTC)  # station zone UTC+7


@pytest.mark.parametrize(
    ("payload", "raw", "reason"),
    [
        (None, b'{"time": ', "malformed JSON"),
        (None, b"\xff\xfe", "malformed JSON"),
        (42, None, "not an object or an array"),
        ({"time": "2026-11-21T02:00:00", "dose_rate": 1, "unit": "nSv/h"}, None, "zone"),
        ({"time": "2026-11-21T02:00:00Z", "dose_rate": 1, "unit": "rem/h"}, None, "rem/h"),
        ({"time": "2026-11-21T02:00:00Z", "dose_rate": -5, "unit": "nSv/h"}, None, "dose_rate"),
        ({"time": "2026-11-21T02:00:00Z", "dose_rate": 1e12, "unit": "nSv/h"}, None, "dose_rate"),
        ({"time": "2026-11-21T04:00:00Z", "dose_rate": 1, "unit": "nSv/h"}, None, "ahead"),
        (
            {"time": 1, "dose_rate": 1, "unit": "mSv/h", "uncertainty": 1e308},
            None,
            "uncertainty",
        ),
        ({"time": 1, "dose_rate": 1, "unit": "nSv/h", "station_id": "QN002"}, None, "match"),
        # beyond the store's 32-bit columns: refused here, not by the COPY of a whole batch
        ({"time": 1, "dose_rate": 1, "unit": "nSv/h", "status": 2**40}, None, "status"),
        ({"time": 1, "dose_rate": 1, "unit": "nSv/h", "counts": 2**31}, None, "counts"),
        (None, b"[" + b'"x",' * 2000 + b'"x"]', "exceeds the limit"),
    ],
)
def test_bad_input_is_a_dead_letter_with_a_reason(
    payload: object, raw: bytes | None, reason: str
) -> None:
    decoded = _decode(payload, raw=raw)
    assert decoded.readings == []
    [letter] = decoded.letters
    assert reason in letter.reason
    assert letter.source == "mqtt" and letter.station_id == "QN001"


def test_unknown_station_names_the_fix() -> None:
    decoded = _decode({"time": 1, "dose_rate": 1, "unit": "nSv/h"}, station_id="XX9")
    assert "unknown station 'XX9'" in decoded.letters[0].reason
    assert "radmon stations import" in decoded.letters[0].reason


def test_the_good_items_of_a_bad_batch_are_kept() -> None:
    good = {"time": "2026-11-21T02:00:00Z", "dose_rate": 90, "unit": "nSv/h"}
    decoded = _decode([good, {"time": "x", "dose_rate": 1, "unit": "nSv/h"}, "junk", good])
    assert len(decoded.readings) == 2
    assert [d.origin for d in decoded.letters] == ["t[1]", "t[2]"]
    assert decoded.letters[0].reason.startswith("item 1: ")
    assert json.loads(decoded.letters[1].payload) == "junk"


def test_a_new_station_is_seen_within_a_second() -> None:
    known: list[Station] = []
    loads = [0]

    def load() -> list[Station]:
        loads[0] += 1
        return list(known)

    clock = [0.0]
    directory = StationDirectory(load, refresh_s=10, clock=lambda: clock[0])
    assert directory.get("QN001") is None
    known.extend(STATIONS)
    clock[0] = 0.5
    assert all(directory.get("QN001") is None for _ in range(100))
    assert loads[0] == 1  # no store query per unknown message
    clock[0] = 1.0
    assert directory.get("QN001") is not None
    assert loads[0] == 2


def test_a_changed_station_counts_after_the_refresh_interval() -> None:
    # A re-import that set a probe's calibration or time zone went unseen until a restart:
    # a known station was never read again, and its readings were judged by the old row.
    rows = {s.station_id: s for s in STATIONS}
    clock = [0.0]
    directory = StationDirectory(lambda: list(rows.values()), refresh_s=10, clock=lambda: clock[0])
    assert directory.get("QN001").timezone is None
    rows["QN001"] = rows["QN001"].model_copy(update={"timezone": "Asia/Ho_Chi_Minh"})
    clock[0] = 5.0
    assert directory.get("QN001").timezone is None  # at most one store query per interval
    clock[0] = 10.0
    assert directory.get("QN001").timezone == "Asia/Ho_Chi_Minh"


def test_stations_stay_when_the_store_cannot_be_read() -> None:
    calls = [0]

    def load() -> list[Station]:
        calls[0] += 1
        if calls[0] > 1:
            raise OperationalError("SELECT", {}, Exception("the database is away"))
        return list(STATIONS)

    clock = [0.0]
    directory = StationDirectory(load, refresh_s=10, clock=lambda: clock[0])
    assert directory.get("QN001") is not None
    clock[0] = 10.0
    assert directory.get("QN001") is not None
    assert calls[0] == 2


_JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
_FIELDS = st.sampled_from(["time", "dose_rate", "unit", "counts", "precip_mm_h", "station_id"])
_ITEM = st.dictionaries(_FIELDS, _JSON | st.sampled_from(["nSv/h", "cps", 0, 1e300]))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.one_of(
        st.binary(max_size=300),
        _JSON.map(lambda v: json.dumps(v).encode()),
        st.lists(_ITEM, max_size=5).map(lambda v: json.dumps(v).encode()),
    )
)
def test_fuzzed_payloads_never_raise_and_nothing_is_dropped(raw: bytes) -> None:
    decoded = _decode(None, raw=raw)
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    expected = len(document) if isinstance(document, list) else 1
    if isinstance(document, list) and len(raw) <= LIMITS.max_payload_bytes:
        assert len(decoded.readings) + len(decoded.letters) == expected
    else:
        assert len(decoded.readings) + len(decoded.letters) == 1
    assert all(letter.reason for letter in decoded.letters)


def test_skew_is_measured_from_the_time_of_receipt() -> None:
    ahead = NOW + timedelta(seconds=299)
    assert _decode({"time": ahead.isoformat(), "dose_rate": 1, "unit": "nSv/h"}).readings


# -- the plain path gives exactly what the careful path gives ----------------------------------

VN = timezone(timedelta(hours=7))
_SKEW_EDGE = [NOW + timedelta(seconds=s) for s in (0, 299.999, 299.999999, 300, 300.000001, 301)]
_MOMENTS = st.datetimes(
    min_value=datetime(1969, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.none()
).map(lambda moment: moment.replace(tzinfo=UTC)) | st.sampled_from(_SKEW_EDGE)
_OFFSETS = st.sampled_from(["Z", "z", "+00:00", "+07:00", "-03:30", "", " Z", "Z "])


@st.composite
def _times(draw: st.DrawFn) -> object:
    moment = draw(_MOMENTS)
    kind = draw(st.integers(0, 5))
    if kind == 0:  # ISO 8601 with some zone, or none
        suffix = draw(_OFFSETS)
        text = moment.replace(tzinfo=None).isoformat(timespec=draw(st.sampled_from(_SPECS)))
        return draw(st.sampled_from(["", " ", "\t"])) + text + suffix
    if kind == 1:
        return moment.timestamp()
    if kind == 2:
        return int(moment.timestamp())
    if kind == 3:
        return moment.isoformat()
    return draw(
        st.sampled_from([True, None, "", "x", "2026-11-21", "1763693940", float("nan"), 1e300])
        | st.floats()
    )


_SPECS = ["auto", "seconds", "milliseconds", "microseconds", "minutes"]
_DOSES = (
    st.floats(min_value=0, max_value=2e10)
    | st.integers(-5, 10**12)
    | st.sampled_from([-0.0, -1.0, float("nan"), float("inf"), True, "105", None, 10**400, 1e10])
    | st.floats()
)
_UNITS = st.sampled_from(
    ["nSv/h", "uSv/h", "µSv/h", "μSv/h", "mSv/h", "Sv/h", " USV/H ", "cps", "cpm", "rem/h", 1]
)
_OPTIONAL_NAMES = [
    "counts",
    "status",
    "uncertainty",
    "interval_s",
    "battery_v",
    "temperature_c",
    "precip_mm_h",
    "lat",
    "lon",
    "altitude_m",
]
_EXTRAS = st.dictionaries(
    st.sampled_from([*_OPTIONAL_NAMES, "station_id", "colour"]),
    st.sampled_from([1, 2.5, -1, 0, -0.0, "QN001", "QN002", None, True, 1e9, 1e308, 2**70])
    | st.floats()
    | st.integers(-600, 25_000),
    max_size=3,
)


_GOOD_DOSES = st.floats(min_value=0, max_value=1e4) | st.integers(0, 10**4)
_PAST = st.datetimes(min_value=datetime(1990, 1, 1), max_value=NOW.replace(tzinfo=None)).map(
    lambda moment: moment.replace(tzinfo=UTC)
)


@st.composite
def _items(draw: st.DrawFn, calibrated: bool) -> object:
    """Mostly items valid for the station (so the plain path is exercised), now and then
    anything."""
    if draw(st.integers(0, 49)) == 0:
        item: dict[str, object] = {"time": draw(_times()), "dose_rate": draw(_DOSES)}
        item["unit"] = draw(_UNITS)
        if draw(st.integers(0, 2)) == 0:
            item.update(draw(_EXTRAS))
        if draw(st.integers(0, 3)) == 0:
            del item[draw(st.sampled_from(sorted(item)))]
        return item
    edge = draw(st.integers(0, 29)) == 0  # at the limit of the future skew, either side
    moment = draw(st.sampled_from(_SKEW_EDGE) if edge else _PAST)
    local = moment.astimezone(VN)
    times = [
        moment.isoformat(),
        moment.isoformat().replace("+00:00", "Z"),
        local.isoformat(),
        moment.timestamp(),
        int(moment.timestamp()),
    ]
    units = ["nSv/h", "uSv/h", "µSv/h", "mSv/h"]
    if calibrated:  # QN002 knows its zone and its sensitivity
        times.append(local.replace(tzinfo=None).isoformat())
        units += ["cps", "cpm"]
    item = {
        "time": draw(st.sampled_from(times)),
        "dose_rate": draw(_GOOD_DOSES),
        "unit": draw(st.sampled_from(units)),
    }
    if draw(st.integers(0, 9)) == 0:
        item.update(draw(_GOOD_EXTRAS))
    return item


_GOOD_EXTRAS = st.dictionaries(
    st.sampled_from(_OPTIONAL_NAMES),
    st.integers(0, 100) | st.floats(0, 100) | st.sampled_from([None, 1000, 150, -90.0]),
    max_size=4,
)


@st.composite
def _documents(draw: st.DrawFn) -> tuple[object, str]:
    station_id = draw(st.sampled_from(["QN001", "QN002"]))
    items = _items(station_id == "QN002")
    shapes = st.one_of(
        items, st.lists(items, max_size=6), st.lists(items, min_size=30, max_size=40)
    )
    return draw(shapes), station_id


def _careful_decode(raw: bytes, station_id: str):
    from ingest.payloads import _careful

    station = {s.station_id: s for s in STATIONS}.get(station_id)
    return _careful(raw, station_id, station, Context("mqtt", "t", NOW, LIMITS))


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(_documents())
def test_the_plain_path_decodes_exactly_as_the_careful_path(case: tuple[object, str]) -> None:
    document, station_id = case
    raw = json.dumps(document, ensure_ascii=station_id == "QN001").encode()
    if len(raw) > LIMITS.max_payload_bytes:
        return
    fast, careful = _decode(None, station_id, raw), _careful_decode(raw, station_id)
    assert fast.letters == careful.letters
    assert _typed(fast.readings) == _typed(careful.readings)
    for got in fast.readings:
        assert got.time.utcoffset() == timedelta(0)
        assert _typed([reading_row(got.model())]) == _typed([got])  # a valid Reading


def _typed(rows: list[ReadingRow]) -> list[list[tuple[type, object]]]:
    """Rows with the type of each value: COPY writes 600 and 600.0 differently."""
    return [[(type(value), value) for value in row] for row in rows]


def test_the_plain_path_takes_the_common_messages() -> None:
    """Plain messages do not reach the careful path (where the time would go)."""
    from unittest import mock

    good = {"time": "2026-11-21T02:00:00Z", "dose_rate": 90.5, "unit": "nSv/h"}
    local = {"time": "2026-11-21T09:00:00", "dose_rate": 12, "unit": "cps"}
    with mock.patch("ingest.payloads._careful", side_effect=AssertionError("careful")):
        assert len(_decode([good] * 40).readings) == 40
        assert len(_decode(good).readings) == 1
        assert _decode([local], station_id="QN002").readings[0].time == datetime(
            2026, 11, 21, 2, tzinfo=UTC
        )
        assert _decode([{**good, "counts": 7}]).readings[0].counts == 7
        rich = {**good, "counts": 7, "uncertainty": 3, "interval_s": 600, "precip_mm_h": 0.4}
        reading = _decode([rich, rich | {"station_id": "QN001", "battery_v": None}]).readings[1]
        assert reading == ReadingRow(
            "QN001",
            datetime(2026, 11, 21, 2, tzinfo=UTC),
            90.5,
            uncertainty_nsv_h=3.0,
            counts=7,
            interval_s=600.0,
            precip_mm_h=0.4,
        )
        assert type(reading.interval_s) is float
