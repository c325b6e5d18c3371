"""GQ GMC Geiger counters over their serial port (GQ-RFC1201 / GQ-RFC1801).

The counter answers ``<GETCPM>>`` with the count of the last minute, big-endian: 4 bytes on
RFC1801 firmware, 2 bytes on older RFC1201 firmware (the profile's ``cpm_bytes``). The protocol
has no framing or checksum, so the driver stops the heartbeat stream when it opens the port and
flushes stray input before every command. pyserial is blocking: each exchange runs in a worker
thread, bounded by the probe's timeout.
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

import serial

from ingest.edge.base import DriverSpec, ProbeError, ProfileBase, Sample
from radmon.config import ProbeSettings

GETCPM = b"<GETCPM>>"
HEARTBEAT_OFF = b"<HEARTBEAT0>>"


class GmcProfile(ProfileBase):
    """A GMC model: how many bytes its CPM answer has, and its serial speed."""

    driver: Literal["gmc"] = "gmc"
    cpm_bytes: Literal[2, 4] = 4

    def dose_unit(self) -> str:
        return "cpm"


class GmcDriver:
    """One counter on one serial port."""

    def __init__(self, profile: GmcProfile, probe: ProbeSettings) -> None:
        self._profile = profile
        self._probe = probe
        self._port: serial.Serial | None = None

    def _open(self) -> serial.Serial:
        probe = self._probe
        baudrate = probe.baudrate
        if "baudrate" not in probe.model_fields_set and self._profile.baudrate:
            baudrate = self._profile.baudrate
        port = serial.Serial(
            probe.serial_port,
            baudrate=baudrate,
            parity=probe.parity,
            stopbits=probe.stopbits,
            timeout=probe.timeout_s,
            write_timeout=probe.timeout_s,
        )
        port.write(HEARTBEAT_OFF)  # a counter left streaming would garble every answer
        time.sleep(0.05)
        port.reset_input_buffer()
        return port

    def _exchange(self, port: serial.Serial) -> int:
        port.reset_input_buffer()
        port.write(GETCPM)
        answer = port.read(self._profile.cpm_bytes)
        if len(answer) != self._profile.cpm_bytes:
            # no framing: a counter that answers late would have its answer taken for the
            # next poll's, stamped with that poll's time; wait as long again, and drop it
            time.sleep(self._probe.timeout_s)
            port.reset_input_buffer()
            raise ProbeError(
                f"<GETCPM>> answered {len(answer)} of {self._profile.cpm_bytes} bytes in time"
            )
        return int.from_bytes(answer, "big")

    async def connect(self) -> None:
        await self.close()
        try:
            self._port = await asyncio.to_thread(self._open)
        except (serial.SerialException, OSError) as exc:
            raise ProbeError(f"cannot open {self._probe.serial_port}: {exc}") from exc

    async def read(self) -> Sample:
        if self._port is None:
            raise ProbeError("not connected")
        try:
            cpm = await asyncio.to_thread(self._exchange, self._port)
        except (serial.SerialException, OSError) as exc:
            raise ProbeError(f"{self._probe.serial_port}: {exc}") from exc
        return Sample(dose_rate=float(cpm), unit="cpm", extra={"counts": cpm, "interval_s": 60.0})

    async def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            await asyncio.to_thread(port.close)


def _create(profile: ProfileBase, probe: ProbeSettings) -> GmcDriver:
    assert isinstance(profile, GmcProfile)
    return GmcDriver(profile, probe)


SPEC = DriverSpec(profile_model=GmcProfile, transports=frozenset({"gmc"}), create=_create)
