"""Modbus probes, TCP or RTU, through pymodbus' async clients; the register map is the profile."""

from __future__ import annotations

import gc
import termios
from typing import Literal

from pydantic import Field
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from ingest.edge.base import DriverSpec, ProbeError, ProfileBase, Sample
from ingest.edge.registers import (
    Block,
    DoseSpec,
    RegisterSpec,
    StatusSpec,
    decode,
    plan_reads,
    status_word,
)
from radmon.config import ProbeSettings

ExtraName = Literal["temperature_c", "battery_v", "counts", "precip_mm_h", "uncertainty"]


class ModbusProfile(ProfileBase):
    """A Modbus probe model: its dose-rate register, optional status word and extra values."""

    driver: Literal["modbus"] = "modbus"
    dose_rate: DoseSpec
    status: StatusSpec | None = None
    # uncertainty is in the dose-rate register's unit; the others in the named unit
    extra: dict[ExtraName, RegisterSpec] = Field(default_factory=dict)

    def dose_unit(self) -> str:
        return self.dose_rate.unit


class ModbusDriver:
    """One probe behind a pymodbus client; reconnection is the poller's job, not pymodbus'."""

    def __init__(self, profile: ModbusProfile, probe: ProbeSettings) -> None:
        self._profile = profile
        self._probe = probe
        specs: list[RegisterSpec] = [profile.dose_rate, *profile.extra.values()]
        if profile.status:
            specs.append(profile.status)
        self._plan = plan_reads(specs)
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        probe = self._probe
        if probe.transport == "tcp":
            return AsyncModbusTcpClient(
                probe.host or "",
                port=probe.port,
                timeout=probe.timeout_s,
                retries=0,
                reconnect_delay=0,  # 0: pymodbus does not reconnect on its own
            )
        baudrate = probe.baudrate
        if "baudrate" not in probe.model_fields_set and self._profile.baudrate:
            baudrate = self._profile.baudrate
        return AsyncModbusSerialClient(
            probe.serial_port or "",
            framer=FramerType.RTU,
            baudrate=baudrate,
            parity=probe.parity,
            stopbits=probe.stopbits,
            timeout=probe.timeout_s,
            retries=0,
            reconnect_delay=0,
        )

    async def connect(self) -> None:
        await self.close()
        self._client = self._new_client()
        refused = None
        try:
            connected = await self._client.connect()
        except termios.error as exc:  # a serial setting the port refuses (parity, speed)
            refused = f"cannot set up {self._probe.serial_port}: {exc}"
        if refused is not None:
            # pyserial opened the port before the setting failed; only the traceback holds
            # it now: dropped here (no chained exception), the port closes and a later
            # attempt can lock it again
            await self.close()
            gc.collect()
            raise ProbeError(refused)
        if not connected:
            where = self._probe.host if self._probe.transport == "tcp" else self._probe.serial_port
            raise ProbeError(f"cannot connect to {where}")

    async def read(self) -> Sample:
        client = self._client
        if client is None or not client.connected:
            raise ProbeError("not connected")
        blocks: dict[Block, list[int]] = {}
        for block in self._plan:
            call = (
                client.read_holding_registers
                if block.function == 3
                else client.read_input_registers
            )
            try:
                response = await call(block.start, count=block.count, device_id=self._probe.unit_id)
            except (TimeoutError, ModbusException, OSError) as exc:
                raise ProbeError(f"read {block.count} register(s) at {block.start}: {exc}") from exc
            if response.isError():
                raise ProbeError(f"read at {block.start}: probe answered {response}")
            if len(response.registers) < block.count:
                raise ProbeError(
                    f"read {block.count} register(s) at {block.start}: "
                    f"probe answered {len(response.registers)}"
                )
            blocks[block] = list(response.registers)
        return self._sample(blocks)

    def _sample(self, blocks: dict[Block, list[int]]) -> Sample:
        profile = self._profile
        status = faults = flags = None
        if profile.status:
            status = status_word(profile.status, blocks)
            named = [(bit, spec) for bit, spec in sorted(profile.status.bits.items())]
            faults = tuple(s.name for b, s in named if s.fault and status >> b & 1)
            flags = tuple(s.name for b, s in named if not s.fault and status >> b & 1)
        return Sample(
            dose_rate=decode(profile.dose_rate, blocks),
            unit=profile.dose_rate.unit,
            status=status,
            faults=faults or (),
            flags=flags or (),
            extra={name: decode(spec, blocks) for name, spec in profile.extra.items()},
        )

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _create(profile: ProfileBase, probe: ProbeSettings) -> ModbusDriver:
    assert isinstance(profile, ModbusProfile)
    return ModbusDriver(profile, probe)


SPEC = DriverSpec(profile_model=ModbusProfile, transports=frozenset({"tcp", "rtu"}), create=_create)
