"""What to simulate: the size of the network, its seed, its faults and its injected events."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from radmon.errors import InputError

if TYPE_CHECKING:
    from radmon.config import SimulatorSettings

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that decides a simulated run; the same config and seed give the same data.

    ``events`` switches the injected radiological events (sources, passing sources, plumes) and
    ``faults`` the probe faults (stuck values, dropouts): either can be off for a clean baseline.
    Event counts are per planning window: the whole run for :func:`simulate`, else
    ``event_window_days`` (so a live demo keeps producing events).
    """

    n_stations: int = 40
    seed: int = 1
    interval_s: int = 600
    start: datetime = DEFAULT_START
    province: str = "quang_ninh"
    gauge_fraction: float = 0.5
    scintillator_fraction: float = 0.3
    rain: bool = True
    rain_factor: float = 1.0  # scales the province's rain-cell climatology (0: no planned rain)
    events: bool = True
    n_source_near_station: int = 2
    n_passing_source: int = 3
    n_regional_plume: int = 1
    event_window_days: float = 1.0
    faults: bool = True
    stuck_per_station_day: float = 0.001
    dropout_per_station_day: float = 0.004
    stuck_hours: tuple[float, float] = (2.0, 24.0)
    dropout_hours: tuple[float, float] = (0.5, 12.0)

    def __post_init__(self) -> None:
        if not isinstance(self.start, datetime) or self.start.utcoffset() is None:
            raise InputError(f"simulation start {self.start!r} must be an aware datetime (UTC)")
        if self.start.microsecond:
            raise InputError(f"simulation start {self.start.isoformat()} must be a whole second")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        if not 1 <= self.n_stations <= 100_000:
            raise InputError(f"n_stations={self.n_stations}: expected 1 to 100000")
        if not 1 <= self.interval_s <= 86_400:
            raise InputError(f"interval_s={self.interval_s}: expected 1 to 86400 seconds")
        for name in ("gauge_fraction", "scintillator_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name}={value}: expected a fraction from 0 to 1")
        for name in (
            "n_source_near_station",
            "n_passing_source",
            "n_regional_plume",
            "stuck_per_station_day",
            "dropout_per_station_day",
        ):
            if getattr(self, name) < 0:
                raise InputError(f"{name}={getattr(self, name)}: must not be negative")
        if not (self.rain_factor >= 0 and math.isfinite(self.rain_factor)):
            raise InputError(f"rain_factor={self.rain_factor}: must be a number >= 0")
        if not (self.event_window_days > 0 and math.isfinite(self.event_window_days)):
            raise InputError(f"event_window_days={self.event_window_days}: must be > 0")
        for name in ("stuck_hours", "dropout_hours"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise InputError(f"{name}={(low, high)}: expected 0 < min <= max hours")

    @classmethod
    def from_settings(cls, settings: SimulatorSettings, start: datetime) -> SimulationConfig:
        """The config for the live simulator of ``radmon demo`` / ``serve`` (``simulator:``)."""
        return cls(
            n_stations=settings.stations,
            seed=settings.seed,
            interval_s=settings.interval_s,
            start=floor_time(start, settings.interval_s),
            province=settings.province,
        )


def floor_time(moment: datetime, interval_s: int) -> datetime:
    """*moment* rounded down to a multiple of *interval_s* since midnight UTC (round timestamps)."""
    if moment.utcoffset() is None:
        raise InputError(f"time {moment!r} must be aware (UTC)")
    moment = moment.astimezone(UTC).replace(microsecond=0)
    midnight = moment.replace(hour=0, minute=0, second=0)
    seconds = int((moment - midnight).total_seconds())
    return midnight + timedelta(seconds=seconds - seconds % interval_s)
