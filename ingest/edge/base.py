"""What every probe driver shares: the profile base, a decoded sample, the driver interface.

A driver turns one probe's protocol into a :class:`Sample` in the profile's own unit; everything
after that (unit conversion, validation, spooling, forwarding) is the same for every probe model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from radmon.config import ProbeSettings


class ProbeError(Exception):
    """The probe did not answer, or answered something unusable: a failed poll."""


class ProfileBase(BaseModel):
    """Keys every profile file has; a driver's own profile model adds its keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    driver: str = "modbus"
    # counts per second per µSv/h, for probes reporting cps/cpm; the probe's setting wins
    sensitivity_cps_per_usv_h: float | None = Field(default=None, gt=0)
    # serial speed the model uses when the probe's settings name none
    baudrate: int | None = Field(default=None, gt=0)

    def dose_unit(self) -> str:
        """The unit the driver reports the dose rate in (before conversion to nSv/h)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Sample:
    """One poll's answer in the probe's own unit, before conversion."""

    dose_rate: float
    unit: str
    status: int | None = None
    faults: tuple[str, ...] = ()  # named status bits that make the dose untrustworthy
    flags: tuple[str, ...] = ()  # named status bits that are only reported
    extra: dict[str, float] = field(default_factory=dict)  # temperature_c, battery_v, counts, ...


class Driver(Protocol):
    """One connection to one probe; the poller owns its lifetime and its retries."""

    async def connect(self) -> None: ...

    async def read(self) -> Sample: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class DriverSpec:
    """A registered driver: its profile keys, the transports it runs on, and its factory."""

    profile_model: type[ProfileBase]
    transports: frozenset[str]
    create: Callable[[ProfileBase, ProbeSettings], Driver]
