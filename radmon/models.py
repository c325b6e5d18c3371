"""Domain models shared by every package: stations, readings, alarms and their enums."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from operator import attrgetter
from typing import Annotated, Any, NamedTuple, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

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

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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

    @field_validator("name", "probe_model", "district")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # SQLite kept it, PostgreSQL's text refused it with a traceback: one rule for both
        if value is not None and "\x00" in value:
            raise ValueError("contains a NUL byte")
        return value


# Constraints shared by the stored Reading and the WireReading devices send.
_Finite = Annotated[float, Field(allow_inf_nan=False)]
_NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# The store's integer columns are 32 bits (PostgreSQL's integer): counts, status, row ids.
INT32_MAX = 2**31 - 1
_Counts = Annotated[int, Field(ge=0, le=INT32_MAX)]
_Status = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
_Interval = Annotated[float, Field(gt=0, allow_inf_nan=False)]
# mm/h: the heaviest hour ever recorded is about 300 mm; a gauge saying more is broken
MAX_PRECIP_MM_H = 1000.0
_Precip = Annotated[float, Field(ge=0, le=MAX_PRECIP_MM_H, allow_inf_nan=False)]
_Temperature = Annotated[float, Field(ge=-100, le=150, allow_inf_nan=False)]
_Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
_Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
_Altitude = Annotated[float, Field(ge=-500, le=20000, allow_inf_nan=False)]


class Reading(BaseModel):
    """One validated reading in the canonical unit (nSv/h), time in UTC."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    station_id: str = Field(pattern=STATION_ID_PATTERN)
    time: UtcDateTime
    dose_rate_nsv_h: float = Field(ge=0, le=units.MAX_PLAUSIBLE_NSV_H, allow_inf_nan=False)
    uncertainty_nsv_h: _NonNegative | None = None
    counts: _Counts | None = None
    interval_s: _Interval | None = None
    precip_mm_h: _Precip | None = None
    battery_v: _Finite | None = None
    temperature_c: _Temperature | None = None
    status: _Status | None = None
    # where a mobile probe (a bGeigie, a car survey) was; fixed stations leave these empty
    lat: _Lat | None = None
    lon: _Lon | None = None
    altitude_m: _Altitude | None = None


class ReadingRow(NamedTuple):
    """A checked reading as a row in the store's column order, with a Reading's field names.

    The ingest builds these instead of :class:`Reading` models: a model cost more than
    decoding the JSON it came from. COPY writes a row as it is, and whatever reads a
    reading's attributes (the detectors, the rollups) reads a row's alike.
    """

    station_id: str
    time: datetime
    dose_rate_nsv_h: float
    uncertainty_nsv_h: float | None = None
    counts: int | None = None
    interval_s: float | None = None
    precip_mm_h: float | None = None
    battery_v: float | None = None
    temperature_c: float | None = None
    status: int | None = None
    lat: float | None = None
    lon: float | None = None
    altitude_m: float | None = None

    def model(self) -> Reading:
        """This row as a Reading with only the fields it has."""
        return Reading(
            **{name: value for name, value in self._asdict().items() if value is not None}
        )


AnyReading = Reading | ReadingRow


def reading_row(r: AnyReading) -> ReadingRow:
    """*r* as a row (a row is returned as it is)."""
    if type(r) is ReadingRow:
        return r
    return _make_row(_row_values(r))


_row_values = attrgetter(*ReadingRow._fields)  # a Reading's fields, in the row's order
_make_row = ReadingRow._make


class WireReading(BaseModel):
    """One reading as a device sends it (CONTRACTS: MQTT payload), before conversion.

    Strict: ``"105"`` is not a number and ``true`` is not a time. Validating this in
    pydantic-core, straight from JSON for a whole batch, is what keeps the ingest fast.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    time: str | float = Field(description="ISO 8601 with a zone, or Unix seconds")
    dose_rate: _NonNegative
    unit: str
    station_id: str | None = None
    uncertainty: _NonNegative | None = None
    counts: _Counts | None = None
    interval_s: _Interval | None = None
    battery_v: _Finite | None = None
    temperature_c: _Temperature | None = None
    precip_mm_h: _Precip | None = None
    status: _Status | None = None
    lat: _Lat | None = None
    lon: _Lon | None = None
    altitude_m: _Altitude | None = None


# Wire fields stored under the same name; the rest are converted by to_reading.
_PASSED_THROUGH = frozenset(WireReading.model_fields) - {
    "time",
    "dose_rate",
    "unit",
    "station_id",
    "uncertainty",
}


def to_reading(wire: WireReading, station: Station, factor: float | None = None) -> Reading:
    """Convert a validated *wire* reading of *station* once: UTC time, nSv/h.

    *factor* (from units.factor_to_nsv_h) may be passed when a batch shares one unit.
    Raises InputError with a reason a person can act on.
    """
    moment = times.parse_time(wire.time, station.timezone)
    if factor is None:
        factor = units.factor_to_nsv_h(wire.unit, station.sensitivity_cps_per_usv_h)
    value = wire.dose_rate * factor
    if value > units.MAX_PLAUSIBLE_NSV_H:
        raise InputError(
            f"dose_rate={wire.dose_rate!r} {wire.unit} is {value:.3g} nSv/h, above the "
            f"plausible maximum of {units.MAX_PLAUSIBLE_NSV_H:.0e} nSv/h (10 Sv/h)"
        )
    # only what the device sent: most payloads carry no optional field at all
    fields = {
        name: given
        for name in wire.model_fields_set & _PASSED_THROUGH
        if (given := getattr(wire, name)) is not None
    }
    if wire.uncertainty is not None:
        uncertainty = wire.uncertainty * factor
        if not math.isfinite(uncertainty):
            raise InputError(
                f"uncertainty={wire.uncertainty!r} {wire.unit} is beyond any number in nSv/h"
            )
        fields["uncertainty_nsv_h"] = uncertainty
    # pydantic-core checks these again, in about a microsecond: cheaper than model_construct
    return Reading(station_id=station.station_id, time=moment, dose_rate_nsv_h=value, **fields)


def parse_reading(payload: object, station: Station) -> Reading:
    """Validate one payload object (CONTRACTS: MQTT/HTTP) for *station* and convert it once.

    Raises InputError with a reason a person can act on.
    """
    return to_reading(parse_wire(payload), station)


def parse_wire(payload: object) -> WireReading:
    """One payload object checked against the wire model; InputError names the field."""
    if not isinstance(payload, dict):
        raise InputError(f"payload item {payload!r} is not a JSON object")
    try:
        return WireReading.model_validate(payload)
    except ValidationError as exc:
        raise InputError(_describe_wire_error(exc)) from exc


def _describe_wire_error(exc: ValidationError) -> str:
    """The first problem of a wire payload, named by its field, as a person reads it."""
    first = exc.errors()[0]
    field = next((p for p in first["loc"] if isinstance(p, str)), "payload")
    if first["type"] == "missing":
        return f"reading payload lacks the required field {field!r}"
    if first["type"] == "extra_forbidden":
        return f"unknown field {field!r} in reading payload"
    return f"{field}={first.get('input')!r}: {first['msg']}"


class DeadLetter(BaseModel):
    """Input that was refused, kept with where it came from and why, for a person to act on."""

    id: int | None = None
    received_at: UtcDateTime
    source: str  # mqtt, http, import:csv, import:bgeigie, edge, ...
    origin: str  # topic, file:line, remote address
    station_id: str | None = None
    reason: str
    payload: str  # the raw input (cut at DEAD_LETTER_MAX_PAYLOAD characters)
    # what identifies the refused input across redeliveries (e.g. a digest of the message);
    # unset: the payload itself
    key: str | None = Field(default=None, exclude=True)

    @field_validator("origin", "station_id", "reason", "payload")
    @classmethod
    def _no_nul(cls, text: str | None) -> str | None:
        """PostgreSQL text cannot hold NUL: a letter about a NUL byte would itself be refused
        (and was, stopping the ingest); it is kept as JSON spells it."""
        return text.replace("\x00", "\\u0000") if text and "\x00" in text else text


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
    raised_at: UtcDateTime | None = None  # when the store first saw it (wall clock)
    cleared_by: str | None = None  # who cleared it by hand; None when the engine did


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
    # rain at the station: the reading's own, or the mean of the bucket's rain readings;
    # None where the station reported none (no gauge, or no rain value in the bucket)
    precip_mm_h: float | None = None


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


# -- building models from values already checked -------------------------------------------

M = TypeVar("M", bound=BaseModel)


def trusted(cls: type[M], **values: Any) -> M:
    """``cls(**values)`` for values checked already (by the ingest, or read back from the store).

    pydantic's ``model_construct`` is slower than validating (its per-field loop), and the
    ingest and the live map build thousands of models a second. This sets what
    ``model_construct`` sets, directly; :func:`trusted_is_exact` proves it on this pydantic,
    and where it does not hold every call validates instead.
    """
    return _built(cls, values) if _TRUSTED_EXACT else cls(**values)


def _built(cls: type[M], values: dict[str, Any]) -> M:
    model = _new_object(cls)
    defaults, factories = _defaults(cls)
    fields = defaults.copy()
    for name, factory in factories.items():  # a fresh list or dict for each model
        if name not in values:
            fields[name] = factory()
    fields.update(values)
    _set_attribute(model, "__dict__", fields)
    _set_attribute(model, "__pydantic_fields_set__", set(values))
    _set_attribute(model, "__pydantic_extra__", None)
    _set_attribute(model, "__pydantic_private__", None)
    return model


_new_object = object.__new__
_set_attribute = object.__setattr__


@functools.cache
def _defaults(cls: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Callable[[], Any]]]:
    """Every field in declaration order (as validation orders them), and the default
    factories; required fields are always given."""
    fields = cls.model_fields
    factories = {n: f.default_factory for n, f in fields.items() if f.default_factory is not None}
    defaults = {
        name: None if info.is_required() or name in factories else info.get_default()
        for name, info in fields.items()
    }
    return defaults, factories  # type: ignore[return-value]


def trusted_is_exact() -> bool:
    """Whether :func:`trusted`'s shortcut builds exactly what validation builds, here."""
    sample = {
        "station_id": "QN001",
        "time": datetime(2026, 11, 21, 3, tzinfo=UTC),
        "dose_rate_nsv_h": 105.5,
    }
    try:
        model, checked = _built(Reading, sample), Reading(**sample)
        return (
            model == checked
            and list(model.__dict__.items()) == list(checked.__dict__.items())
            and model.model_fields_set == checked.model_fields_set
            and type(model.model_fields_set) is type(checked.model_fields_set)
            and model.__pydantic_extra__ == checked.__pydantic_extra__
            and model.__pydantic_private__ == checked.__pydantic_private__
            and model.model_dump_json() == checked.model_dump_json()
        )
    except Exception:
        return False


_TRUSTED_EXACT = trusted_is_exact()
