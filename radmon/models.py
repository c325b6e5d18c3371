"""Domain models shared by every package: stations, readings, alarms and their enums."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from radmon import times, units
from radmon.errors import InputError

# Station ids appear in MQTT topics and URLs: no '/', '+', '#' or spaces.
STATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


def _aware_utc(value: datetime) -> datetime:
    return times.ensure_utc(value)


UtcDateTime = Annotated[datetime, AfterValidator(_aware_utc)]


class Severity(StrEnum):
    """Alarm severity, in increasing order of urgency."""

    INFO = "info"
    WARNING = "warning"
    ALERT = "alert"
    EMERGENCY = "emergency"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Category(StrEnum):
    """Whether an alarm may be a source or release, or is about the equipment."""

    RADIOLOGICAL = "radiological"
    TECHNICAL = "technical"


class AlarmState(StrEnum):
    """Lifecycle states (as ThingsBoard's): active or cleared, acknowledged or not."""

    ACTIVE_UNACK = "active_unack"
    ACTIVE_ACK = "active_ack"
    CLEARED_UNACK = "cleared_unack"
    CLEARED_ACK = "cleared_ack"

    @property
    def is_open(self) -> bool:
        return self in (AlarmState.ACTIVE_UNACK, AlarmState.ACTIVE_ACK)


class Resolution(StrEnum):
    """Time resolution of a series query."""

    RAW = "raw"
    HOUR = "hour"
    DAY = "day"


class Station(BaseModel):
    """A monitoring station (one probe at one place)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    station_id: str = Field(pattern=STATION_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    elevation_m: float | None = None
    probe_model: str | None = None
    district: str | None = None
    timezone: str | None = None
    interval_s: int = Field(default=600, gt=0, le=86400)
    sensitivity_cps_per_usv_h: float | None = Field(default=None, gt=0)
    has_rain_gauge: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value:
            times.zone(value)
        return value or None


class Reading(BaseModel):
    """One validated reading in the canonical unit (nSv/h), time in UTC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    station_id: str = Field(pattern=STATION_ID_PATTERN)
    time: UtcDateTime
    dose_rate_nsv_h: float = Field(ge=0, le=units.MAX_PLAUSIBLE_NSV_H, allow_inf_nan=False)
    uncertainty_nsv_h: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    counts: int | None = Field(default=None, ge=0)
    interval_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    precip_mm_h: float | None = Field(default=None, ge=0, le=1000, allow_inf_nan=False)
    battery_v: float | None = Field(default=None, allow_inf_nan=False)
    temperature_c: float | None = Field(default=None, ge=-100, le=150, allow_inf_nan=False)
    status: int | None = None
    # where a mobile probe (a bGeigie, a car survey) was; fixed stations leave these empty
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    altitude_m: float | None = Field(default=None, ge=-500, le=20000, allow_inf_nan=False)


_OPTIONAL_PAYLOAD_FIELDS = (
    "uncertainty",
    "counts",
    "interval_s",
    "battery_v",
    "temperature_c",
    "precip_mm_h",
    "status",
    "lat",
    "lon",
    "altitude_m",
)


def parse_reading(payload: dict[str, Any], station: Station) -> Reading:
    """Validate one payload object (CONTRACTS: MQTT/HTTP) for *station* and convert it once.

    Raises InputError with a reason a person can act on.
    """
    if not isinstance(payload, dict):
        raise InputError(f"payload item {payload!r} is not a JSON object")
    unknown = set(payload) - {"time", "dose_rate", "unit", "station_id", *_OPTIONAL_PAYLOAD_FIELDS}
    if unknown:
        raise InputError(f"unknown field(s) {sorted(unknown)} in reading payload")
    for required in ("time", "dose_rate", "unit"):
        if required not in payload:
            raise InputError(f"reading payload lacks the required field {required!r}")
    unit = payload["unit"]
    if not isinstance(unit, str):
        raise InputError(f"unit {unit!r} is not text")
    moment = times.parse_time(payload["time"], station.timezone)
    value = units.to_nsv_h(payload["dose_rate"], unit, station.sensitivity_cps_per_usv_h)
    uncertainty = payload.get("uncertainty")
    if uncertainty is not None:
        uncertainty = units.to_nsv_h(uncertainty, unit, station.sensitivity_cps_per_usv_h)
    fields = {k: payload[k] for k in _OPTIONAL_PAYLOAD_FIELDS[1:] if payload.get(k) is not None}
    try:
        return Reading(
            station_id=station.station_id,
            time=moment,
            dose_rate_nsv_h=value,
            uncertainty_nsv_h=uncertainty,
            **fields,
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise InputError(_first_error(exc, payload)) from exc


def _first_error(exc: ValueError, payload: dict[str, Any]) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    first = errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    shown = payload.get("dose_rate") if field == "dose_rate_nsv_h" else payload.get(field)
    return f"{field}={shown!r}: {first['msg']}"


class DeadLetter(BaseModel):
    """Input that was refused, kept with where it came from and why, for a person to act on."""

    id: int | None = None
    received_at: UtcDateTime
    source: str  # mqtt, http, import:csv, import:bgeigie, edge, ...
    origin: str  # topic, file:line, remote address
    station_id: str | None = None
    reason: str
    payload: str  # the raw input (cut at DEAD_LETTER_MAX_PAYLOAD characters)


DEAD_LETTER_MAX_PAYLOAD = 65536


class Alarm(BaseModel):
    """One alarm episode: opened by a detector, acknowledged and cleared by people or time."""

    model_config = ConfigDict(extra="forbid")

    id: int | None = None
    station_id: str
    kind: str
    category: Category
    severity: Severity
    state: AlarmState = AlarmState.ACTIVE_UNACK
    opened_at: UtcDateTime
    updated_at: UtcDateTime | None = None
    cleared_at: UtcDateTime | None = None
    peak_nsv_h: float | None = None
    baseline_nsv_h: float | None = None
    acked_by: str | None = None
    acked_at: UtcDateTime | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class LatestReading(BaseModel):
    """A station with its most recent reading (none when it has never reported)."""

    station: Station
    time: datetime | None = None
    dose_rate_nsv_h: float | None = None
    severity: Severity | None = None


class SeriesPoint(BaseModel):
    """One point of a series; at raw resolution min = max = mean and count = 1."""

    time: datetime
    mean_nsv_h: float
    min_nsv_h: float
    max_nsv_h: float
    count: int


class StationStats(BaseModel):
    """Statistics of one station over a period, with data availability."""

    station_id: str
    count: int
    mean_nsv_h: float | None
    min_nsv_h: float | None
    max_nsv_h: float | None
    expected: int
    availability_pct: float

    @classmethod
    def of(
        cls,
        station: Station,
        count: int,
        total: float | None,
        low: float | None,
        high: float | None,
        period_s: float,
    ) -> StationStats:
        expected = max(1, math.floor(period_s / station.interval_s))
        return cls(
            station_id=station.station_id,
            count=count,
            mean_nsv_h=(total / count) if count and total is not None else None,
            min_nsv_h=low,
            max_nsv_h=high,
            expected=expected,
            availability_pct=round(min(100.0, 100.0 * count / expected), 2),
        )
