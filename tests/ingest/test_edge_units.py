"""Register decoding, read planning, backoff and payload conversion, without any I/O."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest

from ingest.edge.backoff import Backoff
from ingest.edge.base import Sample
from ingest.edge.convert import iso_z, to_payload
from ingest.edge.registers import Block, RegisterSpec, decode, plan_reads
from radmon.errors import InputError


def test_float32_word_orders_and_signed_types_decode() -> None:
    high, low = struct.unpack(">HH", struct.pack(">f", 0.125))
    big = RegisterSpec(address=10, function=4, type="float32", word_order="big")
    little = RegisterSpec(address=10, function=4, type="float32", word_order="little")
    assert decode(big, {Block(4, 10, 2): [high, low]}) == 0.125
    assert decode(little, {Block(4, 10, 2): [low, high]}) == 0.125
    signed = RegisterSpec(address=0, type="int32", scale=0.5, offset=1.0)
    assert decode(signed, {Block(3, 0, 2): [0xFFFF, 0xFFFE]}) == -2 * 0.5 + 1.0
    assert decode(RegisterSpec(address=1, type="int16"), {Block(3, 0, 2): [0, 0xFFFF]}) == -1


def test_reads_are_merged_per_function_code_within_the_protocol_limit() -> None:
    specs = [
        RegisterSpec(address=0, function=4, type="float32"),
        RegisterSpec(address=4, function=4),
        RegisterSpec(address=100, function=3, type="uint32"),
        RegisterSpec(address=300, function=3),  # too far for one read of at most 125
    ]
    assert plan_reads(specs) == [Block(3, 100, 2), Block(3, 300, 1), Block(4, 0, 5)]


def test_backoff_doubles_to_its_cap_with_jitter_and_resets() -> None:
    low = Backoff(1.0, 8.0, rand=lambda: 0.0)
    high = Backoff(1.0, 8.0, rand=lambda: 1.0)
    assert [low.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [high.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    high.reset()
    assert high.next() == 1.0


def test_payload_is_in_nsv_h_with_a_fixed_width_utc_time() -> None:
    moment = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=UTC)
    sample = Sample(dose_rate=600.0, unit="cpm", status=4, extra={"counts": 600.0})
    payload = to_payload("QN-1", moment, sample, sensitivity=5.0)
    assert payload == {
        "time": "2026-11-21T10:00:00.123Z",
        "dose_rate": pytest.approx(2000.0),  # 10 cps / 5 cps per µSv/h
        "unit": "nSv/h",
        "counts": 600,
        "status": 4,
    }
    assert iso_z(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000Z"


def test_impossible_values_are_refused_with_the_field() -> None:
    moment = datetime.now(UTC)
    with pytest.raises(InputError, match="dose_rate_nsv_h"):
        to_payload("QN-1", moment, Sample(dose_rate=-1.0, unit="nSv/h"), None)
    with pytest.raises(InputError, match="temperature_c"):
        to_payload(
            "QN-1", moment, Sample(dose_rate=1.0, unit="nSv/h", extra={"temperature_c": 900}), None
        )


def test_a_uint32_status_and_a_large_counter_keep_the_dose() -> None:
    # bit 31 of a status word, or a counter past 2**31, once refused the whole reading
    moment = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    sample = Sample(dose_rate=100.0, unit="nSv/h", status=2**31 + 5, extra={"counts": 2.0**31})
    payload = to_payload("QN-1", moment, sample, None)
    assert payload["dose_rate"] == 100.0
    assert "counts" not in payload
    assert payload["status"] == -(2**31) + 5
    assert payload["status"] & 0xFFFFFFFF == 2**31 + 5  # the same 32 bits
