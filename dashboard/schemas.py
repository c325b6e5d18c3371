"""Response models of the JSON API (they are also what ``/openapi.json`` documents)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from dashboard.request_rules import NO_NUL
from radmon.config_alerting import Matcher
from radmon.models import Alarm, Resolution, SeriesPoint, Severity, UtcDateTime

# Longest note a person may attach to an alarm or a silence: a paragraph, not a report.
MAX_NOTE = 2000
# Longest silence the API sets up: maintenance, not switching alerting off for good.
MAX_SILENCE_MINUTES = 30 * 24 * 60

# A character str.strip() keeps, spelt so that JSON Schema's \s (ECMA) and Python's agree: the
# documented pattern then refuses exactly the notes that are blank once stripped, and any with a
# NUL, which PostgreSQL cannot store in text (SQLite could, so the backends would disagree).
_VISIBLE = r"[^\s\x00\x1c-\x1f\x85\ufeff]"
Note = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=MAX_NOTE,
        pattern=rf"^[^\x00]*{_VISIBLE}[^\x00]*$",
    ),
]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]


class PointGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float] = Field(description="[longitude, latitude] (WGS 84)")


class StationProperties(BaseModel):
    station_id: str
    name: str
    dose_rate_nsv_h: float | None = Field(description="latest reading, H*(10) in nSv/h")
    time: datetime | None = Field(description="time of the latest reading (UTC)")
    severity: Severity | None = Field(description="highest severity of the open alarms")
    online: bool = Field(
        description="false when the latest reading is older than 3 intervals, or when the"
        " station's edge reports the probe, or itself, offline on the MQTT status topics"
    )
    district: str | None
    probe_model: str | None
    interval_s: int
    timezone: str | None
    elevation_m: float | None
    reported_offline: bool = Field(
        default=False, description="the station's edge reports the probe or itself offline"
    )


class StationFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PointGeometry
    properties: StationProperties


class StationCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[StationFeature]


class ReadingSeries(BaseModel):
    station_id: str
    resolution: Resolution
    start: datetime
    end: datetime
    points: list[SeriesPoint]


class Problem(BaseModel):
    """The body of every error answer: what went wrong, in words a person can act on."""

    detail: str


class FieldError(BaseModel):
    """One parameter FastAPI refused before the endpoint ran (its own error format)."""

    loc: list[str | int]
    msg: str
    type: str


# What every operation behind sign-in may answer before it runs.
SIGN_IN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "login required"},
    429: {"model": Problem, "description": "too many failed sign-ins: retry after Retry-After"},
}


class Unprocessable(BaseModel):
    """A 422: a sentence when a rule across parameters is broken (end before start), or
    FastAPI's list of refused fields when a parameter does not match its schema."""

    detail: str | list[FieldError]


class PushedReading(BaseModel):
    """One reading as a probe pushes it (CONTRACTS: the MQTT payload plus ``station_id``)."""

    station_id: str | None = Field(default=None, description="the token's station; may be left out")
    time: str | float = Field(description="ISO 8601 with a zone, or Unix seconds")
    dose_rate: float
    unit: str = Field(description="nSv/h, uSv/h, µSv/h, mSv/h, Sv/h; cps/cpm with calibration")
    uncertainty: float | None = None
    counts: int | None = None
    interval_s: float | None = None
    battery_v: float | None = None
    temperature_c: float | None = None
    precip_mm_h: float | None = None
    status: int | None = None
    lat: float | None = None
    lon: float | None = None
    altitude_m: float | None = None


class PushResult(BaseModel):
    station_id: str
    accepted: int = Field(description="readings stored (or already stored before)")
    new: int = Field(description="readings that were not stored before")
    rejected: list[str] = Field(description="why each item was refused (kept as dead letters)")


class AlarmEvent(BaseModel):
    """One line of an alarm's history: what happened, when, who did it, and what they said."""

    id: int
    alarm_id: int
    at: UtcDateTime
    event: str = Field(description="opened, severity, acknowledged, cleared, comment, …")
    actor: str | None = Field(description="who acted; null when the detectors or alerting did")
    note: str | None
    details: dict[str, Any]


class AlarmWithHistory(Alarm):
    history: list[AlarmEvent] = Field(description="oldest first")


class AlarmAction(BaseModel):
    """The optional body of an acknowledgement or a clearing."""

    model_config = ConfigDict(extra="forbid")

    comment: Note | None = Field(default=None, description="kept in the alarm's history")


class AlarmComment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Note


class NewSilence(Matcher):
    """A maintenance silence: the matcher fields, when it ends, and why (CONTRACTS: alerting)."""

    ends_at: AwareDatetime | None = Field(default=None, description="ISO 8601 with a zone")
    duration_minutes: int | None = Field(default=None, ge=1, le=MAX_SILENCE_MINUTES)
    comment: str = Field(
        max_length=MAX_NOTE, pattern=NO_NUL, description="why: maintenance, calibration, …"
    )

    @model_validator(mode="after")
    def _one_end(self) -> NewSilence:
        if (self.ends_at is None) == (self.duration_minutes is None):
            raise ValueError("give either ends_at or duration_minutes")
        return self

    def matcher(self) -> Matcher:
        return Matcher.model_validate(self.model_dump(include=set(Matcher.model_fields)))


class Silence(BaseModel):
    id: int
    matchers: Matcher
    starts_at: UtcDateTime
    ends_at: UtcDateTime
    created_by: str
    comment: str
    created_at: UtcDateTime


class RetryAccepted(BaseModel):
    id: int
    state: Literal["pending"] = Field(description="the dispatcher sends it again shortly")
