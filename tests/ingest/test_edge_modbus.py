"""Modbus probes (pymodbus servers on loopback and on a pty line) through the edge to the broker."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.broker import Broker
from tests.ingest.test_edge_helpers import (
    ModbusProbe,
    PtyBridge,
    async_wait_until,
    edge_settings,
    float32_words,
    run_edge_until,
    subscriber,
    uint32_words,
)


def test_float32_probe_readings_arrive_in_nsv_h_with_extras(tmp_path: Path, broker: Broker) -> None:
    async def scenario(sub) -> None:
        probe = ModbusProbe()
        await probe.start()
        await probe.set(0, float32_words(0.125))  # µSv/h
        await probe.set(2, [0b0100])  # low_battery: flagged, still sent
        await probe.set(3, [(-52) & 0xFFFF])  # -5.2 °C
        await probe.set(4, [1234])  # 12.34 V
        settings = edge_settings(
            tmp_path,
            broker,
            [
                {
                    "station_id": "QN-F32",
                    "profile": "generic-float32",
                    "host": "127.0.0.1",
                    "port": probe.port,
                    "interval_s": 0.1,
                }
            ],
            publish_batch=1,
        )
        try:
            await run_edge_until(
                settings, lambda: len(sub.readings("QN-F32")) >= 3, 15, "three readings"
            )
        finally:
            await probe.stop()

    before = datetime.now(UTC)
    with subscriber(broker) as sub:
        asyncio.run(scenario(sub))
        readings = sub.readings("QN-F32")
    first = readings[0]
    assert first["unit"] == "nSv/h"
    assert first["dose_rate"] == pytest.approx(125.0)
    assert first["temperature_c"] == pytest.approx(-5.2)
    assert first["battery_v"] == pytest.approx(12.34)
    assert first["status"] == 0b0100
    stamped = datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
    assert first["time"].endswith("Z") and before <= stamped <= datetime.now(UTC)
    times = [r["time"] for r in readings]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_counting_probe_is_converted_and_a_fault_bit_withholds_the_dose(
    tmp_path: Path, broker: Broker
) -> None:
    marks: dict[str, datetime] = {}

    async def scenario(sub) -> None:
        probe = ModbusProbe()
        await probe.start()
        await probe.set(100, uint32_words(1000))  # 10.00 cps
        await probe.set(102, uint32_words(654321))  # counts
        settings = edge_settings(
            tmp_path,
            broker,
            [
                {
                    "station_id": "QN-GM",
                    "profile": "gm-cps",
                    "host": "127.0.0.1",
                    "port": probe.port,
                    "interval_s": 0.05,
                    "sensitivity_cps_per_usv_h": 4.0,  # overrides the profile's 2.5
                }
            ],
        )

        async def fault_phase() -> None:
            await async_wait_until(lambda: sub.readings("QN-GM"), 10, "a healthy reading")
            await probe.set(104, [0b1])  # tube_fault
            marks["fault"] = datetime.now(UTC)
            polled = probe.requests
            await async_wait_until(lambda: probe.requests >= polled + 20, 10, "polls in fault")
            marks["clear"] = datetime.now(UTC)
            await probe.set(104, [0])

        phase = asyncio.create_task(fault_phase())
        try:
            await run_edge_until(
                settings,
                lambda: (
                    "clear" in marks
                    and any(r["time"] > iso(marks["clear"]) for r in sub.readings("QN-GM"))
                ),
                20,
                "readings after the fault cleared",
            )
        finally:
            phase.cancel()
            await probe.stop()

    with subscriber(broker) as sub:
        asyncio.run(scenario(sub))
        readings = sub.readings("QN-GM")
        statuses = sub.statuses("QN-GM/status")
    assert readings[0]["dose_rate"] == pytest.approx(10.0 / 4.0 * 1000)  # 2.5 µSv/h
    assert readings[0]["unit"] == "nSv/h"
    assert readings[0]["counts"] == 654321
    # a poll stamped just before the fault was cleared may read after it: leave it out
    last_faulted = marks["clear"] - timedelta(seconds=0.2)
    during = [r for r in readings if iso(marks["fault"]) < r["time"] <= iso(last_faulted)]
    assert during == [], "no dose rate is sent while the probe flags a tube fault"
    assert statuses[:1] == ["online"] and "offline" not in statuses[:-1]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def test_probe_that_stops_answering_goes_offline_and_back_online(
    tmp_path: Path, broker: Broker
) -> None:
    async def scenario(sub) -> None:
        probe = ModbusProbe()
        await probe.start()
        await probe.set(0, float32_words(0.1))
        settings = edge_settings(
            tmp_path,
            broker,
            [
                {
                    "station_id": "QN-OFF",
                    "profile": "generic-float32",
                    "host": "127.0.0.1",
                    "port": probe.port,
                    "interval_s": 0.1,
                    "timeout_s": 0.3,
                    "offline_after": 2,
                    "backoff_initial_s": 0.05,
                    "backoff_max_s": 0.2,
                }
            ],
        )

        async def outage() -> None:
            await async_wait_until(lambda: sub.statuses("QN-OFF/status"), 10, "online")
            await probe.stop()
            await async_wait_until(
                lambda: sub.statuses("QN-OFF/status")[-1:] == ["offline"], 10, "offline"
            )
            await probe.start()  # same port: the probe is back
            await probe.set(0, float32_words(0.2))

        phase = asyncio.create_task(outage())
        try:
            await run_edge_until(
                settings,
                lambda: any(r["dose_rate"] == pytest.approx(200.0) for r in sub.readings()),
                20,
                "a reading after the probe returned",
            )
            await phase
        finally:
            phase.cancel()
            await probe.stop()

    with subscriber(broker) as sub:
        asyncio.run(scenario(sub))
        statuses = sub.statuses("QN-OFF/status")
        edge_statuses = sub.statuses("edge/edge-test/status")
    # online, offline while it was gone, online when it returned, offline at the edge's stop
    assert statuses == ["online", "offline", "online", "offline"]
    assert edge_statuses == ["online", "offline"]


def test_rtu_probe_over_a_serial_line(tmp_path: Path, broker: Broker) -> None:
    """RTU framing end to end: pymodbus' serial server and client on two ptys joined back to
    back (a null-modem cable), at 19200 baud."""
    line = PtyBridge()

    async def scenario(sub) -> None:
        probe = ModbusProbe(serial_port=line.port_b)
        await probe.start()
        await probe.set(0, float32_words(0.0875))
        await probe.set(4, [1150])
        settings = edge_settings(
            tmp_path,
            broker,
            [
                {
                    "station_id": "QN-RTU",
                    "profile": "generic-float32",
                    "transport": "rtu",
                    "serial_port": line.port_a,
                    "baudrate": 19200,
                    "interval_s": 0.1,
                    "timeout_s": 1.0,
                }
            ],
        )
        try:
            await run_edge_until(
                settings, lambda: len(sub.readings("QN-RTU")) >= 2, 15, "RTU readings"
            )
        finally:
            await probe.stop()

    try:
        with subscriber(broker) as sub:
            asyncio.run(scenario(sub))
            readings = sub.readings("QN-RTU")
    finally:
        line.close()
    assert readings[0]["dose_rate"] == pytest.approx(87.5)
    assert readings[0]["battery_v"] == pytest.approx(11.5)


class _ShortAnswer:
    """A pymodbus response that carries fewer registers than were asked for."""

    registers = (0x3DFB, 0xE76D, 0)

    def isError(self) -> bool:
        return False


class _ShortClient:
    connected = True

    async def read_holding_registers(self, *_args, **_kwargs) -> _ShortAnswer:
        return _ShortAnswer()

    read_input_registers = read_holding_registers

    def close(self) -> None:
        pass


def test_an_answer_with_too_few_registers_is_a_failed_poll_not_a_crash() -> None:
    """A probe (or a gateway in front of it) that answers 3 registers for 5 gave a KeyError
    and a traceback on every poll; it is a failed poll like any other, and says why."""
    from ingest.edge.base import ProbeError
    from ingest.edge.catalog import load_profile
    from ingest.edge.drivers.modbus import ModbusDriver
    from radmon.config import ProbeSettings

    probe = ProbeSettings(station_id="S1", profile="generic-float32", host="127.0.0.1")
    driver = ModbusDriver(load_profile("generic-float32"), probe)  # type: ignore[arg-type]
    driver._client = _ShortClient()  # type: ignore[assignment]
    with pytest.raises(ProbeError, match=r"probe answered 3"):
        asyncio.run(driver.read())


def test_a_serial_setting_the_port_refuses_leaves_the_port_free_for_the_next_try() -> None:
    """A pty refuses even parity when pyserial applies it after opening the port; the failed
    connect kept the port open, so every later try said "could not exclusively lock port"
    instead of the real cause, until the edge restarted."""
    import os
    import pty

    from ingest.edge.base import ProbeError
    from ingest.edge.catalog import load_profile
    from ingest.edge.drivers.modbus import ModbusDriver
    from radmon.config import ProbeSettings

    master, slave = pty.openpty()
    port = os.ttyname(slave)
    probe = ProbeSettings(
        station_id="S1", profile="gm-cps", transport="rtu", serial_port=port, parity="E"
    )
    driver = ModbusDriver(load_profile("gm-cps"), probe)  # type: ignore[arg-type]

    def holding() -> int:
        fds = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                fds.append(os.readlink(f"/proc/self/fd/{fd}"))
        return fds.count(port)

    try:
        for _ in range(2):
            with pytest.raises(ProbeError, match="cannot set up"):
                asyncio.run(driver.connect())
            assert holding() == 1  # the test's own end only
    finally:
        os.close(master)
        os.close(slave)
