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
