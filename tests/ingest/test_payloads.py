"""Decoding reading messages: every item ends up a reading or a dead letter, never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.payloads import Context, decode_message
from ingest.stations import StationDirectory
from radmon.config import IngestSettings
from radmon.models import Station

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
        ({"time": 1, "dose_rate": 1, "unit": "nSv/h", "station_id": "QN002"}, None, "match"),
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


def test_a_new_station_is_seen_after_the_refresh_interval() -> None:
    known: list[Station] = []
    clock = [0.0]
    directory = StationDirectory(lambda: list(known), refresh_s=10, clock=lambda: clock[0])
    assert directory.get("QN001") is None
    known.extend(STATIONS)
    clock[0] = 5.0
    assert directory.get("QN001") is None  # no store query per unknown message
    clock[0] = 10.0
    assert directory.get("QN001") is not None


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
