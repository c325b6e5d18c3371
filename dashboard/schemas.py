"""Response models of the JSON API (they are also what ``/openapi.json`` documents)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from radmon.models import Resolution, SeriesPoint, Severity


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
    online: bool = Field(description="false when the latest reading is older than 3 intervals")
    district: str | None
    probe_model: str | None
    interval_s: int
    timezone: str | None
    elevation_m: float | None


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
