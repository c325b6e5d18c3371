"""Register maps: which registers a Modbus probe model exposes and how to decode them.

Fields that sit close together are read in one request per function code (a probe on a slow
RS-485 line answers one 10-register read much faster than five 2-register reads).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pymodbus.client.mixin import ModbusClientMixin

from radmon import units

RegisterType = Literal["uint16", "int16", "uint32", "int32", "float32"]

_DATATYPES = {
    "uint16": ModbusClientMixin.DATATYPE.UINT16,
    "int16": ModbusClientMixin.DATATYPE.INT16,
    "uint32": ModbusClientMixin.DATATYPE.UINT32,
    "int32": ModbusClientMixin.DATATYPE.INT32,
    "float32": ModbusClientMixin.DATATYPE.FLOAT32,
}
MAX_READ = 125  # registers per read request (Modbus application protocol limit)


class RegisterSpec(BaseModel):
    """One value: where it is, how it is encoded, and value = raw * scale + offset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: int = Field(ge=0, le=65535)
    function: Literal[3, 4] = 3
    type: RegisterType = "uint16"
    word_order: Literal["big", "little"] = "big"
    scale: float = Field(default=1.0, allow_inf_nan=False)
    offset: float = Field(default=0.0, allow_inf_nan=False)

    @property
    def width(self) -> int:
        return _DATATYPES[self.type].value[1]

    @model_validator(mode="after")
    def _fits(self) -> RegisterSpec:
        if self.address + self.width > 65536:
            raise ValueError(
                f"a {self.type} at address {self.address} needs {self.width} registers, "
                "past the last one (65535)"
            )
        return self


class DoseSpec(RegisterSpec):
    """The dose-rate register, with its unit (cps/cpm need a sensitivity)."""

    unit: str

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str) -> str:
        if not units.is_supported(value):
            raise ValueError(f"unit {value!r} is not one radmon converts (nSv/h, uSv/h, cps, ...)")
        return value


class StatusBit(BaseModel):
    """A named bit; a fault bit means the dose rate of that poll is not to be trusted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    fault: bool = False


class StatusSpec(RegisterSpec):
    """The status word and the meaning of its bits."""

    type: Literal["uint16", "uint32"] = "uint16"
    bits: dict[int, StatusBit] = Field(default_factory=dict)

    @field_validator("bits")
    @classmethod
    def _bits_in_word(cls, value: dict[int, StatusBit]) -> dict[int, StatusBit]:
        for bit in value:
            if not 0 <= bit <= 31:
                raise ValueError(f"bit {bit} is outside 0..31")
        return value


@dataclass(frozen=True)
class Block:
    """One read request."""

    function: int
    start: int
    count: int


def plan_reads(specs: Iterable[RegisterSpec]) -> list[Block]:
    """The fewest read requests covering *specs*: one per function code where the span allows."""
    blocks: list[Block] = []
    by_function: dict[int, list[RegisterSpec]] = {}
    for spec in specs:
        by_function.setdefault(spec.function, []).append(spec)
    for function, group in sorted(by_function.items()):
        group.sort(key=lambda s: s.address)
        start = group[0].address
        end = start
        for spec in group:
            spec_end = spec.address + spec.width
            if spec_end - start > MAX_READ:
                blocks.append(Block(function, start, end - start))
                start = spec.address
            end = max(end, spec_end)
        blocks.append(Block(function, start, end - start))
    return blocks


def _raw(spec: RegisterSpec, blocks: Mapping[Block, list[int]]) -> int | float:
    for block, registers in blocks.items():
        if block.function == spec.function and block.start <= spec.address:
            first = spec.address - block.start
            if first + spec.width <= len(registers):
                raw = ModbusClientMixin.convert_from_registers(
                    registers[first : first + spec.width],
                    _DATATYPES[spec.type],
                    word_order=spec.word_order,
                )
                return raw  # type: ignore[return-value]
    raise KeyError(f"register {spec.address} (function {spec.function}) was not read")


def decode(spec: RegisterSpec, blocks: Mapping[Block, list[int]]) -> float:
    """The scaled value of *spec* from the registers read for *blocks*."""
    return float(_raw(spec, blocks)) * spec.scale + spec.offset


def status_word(spec: StatusSpec, blocks: Mapping[Block, list[int]]) -> int:
    """The unscaled status word."""
    return int(_raw(spec, blocks))
