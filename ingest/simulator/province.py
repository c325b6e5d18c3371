"""Province profiles: the towns, climate and zone of a province, read from one YAML file.

The profile is data so that another office adds its province by adding a file to
``ingest/provinces/`` (or by passing the file's path), without touching the code.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from radmon import times
from radmon.errors import InputError, first_problem

PROVINCES_DIR = Path(__file__).resolve().parent.parent / "provinces"

# Mean radius of the Earth (km) for the local flat projection; over a province (< 300 km) the
# equirectangular error is far below the jitter of station placement.
_EARTH_RADIUS_KM = 6371.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BBox(_Strict):
    lat_min: float = Field(ge=-90, le=90)
    lat_max: float = Field(ge=-90, le=90)
    lon_min: float = Field(ge=-180, le=180)
    lon_max: float = Field(ge=-180, le=180)

    @model_validator(mode="after")
    def _ordered(self) -> BBox:
        if self.lat_min >= self.lat_max or self.lon_min >= self.lon_max:
            raise ValueError("bbox needs lat_min < lat_max and lon_min < lon_max")
        return self

    @property
    def centre(self) -> tuple[float, float]:
        return (self.lat_min + self.lat_max) / 2, (self.lon_min + self.lon_max) / 2

    def contains(self, lat: float, lon: float) -> bool:
        return self.lat_min <= lat <= self.lat_max and self.lon_min <= lon <= self.lon_max


class Town(_Strict):
    """A town or district seat near which stations are placed."""

    name: str = Field(min_length=1)
    district: str | None = None
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    elevation_m: float = 0.0
    relief_m: float = Field(default=0.0, ge=0)
    weight: float = Field(default=1.0, gt=0)
    jitter_km: float = Field(default=3.0, ge=0)
    bearing_deg: tuple[float, float] = (0.0, 360.0)

    @field_validator("bearing_deg")
    @classmethod
    def _sector(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1] <= value[0] + 360:
            raise ValueError("bearing_deg is [from, to] clockwise with from < to <= from + 360")
        return value


class Climate(_Strict):
    """Monthly rain-cell climatology (12 values each, January first)."""

    stratiform_per_day: list[float]
    stratiform_peak_mm_h: list[float]
    convective_per_day: list[float]
    convective_peak_mm_h: list[float]
    steering_from_deg: list[float]
    reference_rain_mm: list[float] | None = None

    @field_validator(
        "stratiform_per_day",
        "stratiform_peak_mm_h",
        "convective_per_day",
        "convective_peak_mm_h",
        "steering_from_deg",
        "reference_rain_mm",
    )
    @classmethod
    def _twelve(cls, value: list[float] | None, info: ValidationInfo) -> list[float] | None:
        if value is None:
            return value
        if len(value) != 12:
            raise ValueError("needs 12 monthly values, January first")
        if info.field_name != "steering_from_deg" and min(value) < 0:
            raise ValueError("monthly values must not be negative")
        return value


class Province(_Strict):
    """One province: where its towns are, its zone and its weather."""

    key: str
    name: str
    country: str | None = None
    timezone: str
    station_prefix: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9]{0,7}$")
    bbox: BBox
    climate: Climate
    towns: tuple[Town, ...] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        times.zone(value)
        return value

    @property
    def origin(self) -> tuple[float, float]:
        """The (lat, lon) origin of the province's local km grid."""
        return self.bbox.centre

    def to_xy(
        self, lat: np.ndarray | float, lon: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Local east/north km from the bbox centre (equirectangular; fine at province scale)."""
        lat0, lon0 = self.origin
        k = math.pi / 180 * _EARTH_RADIUS_KM
        x = (np.asarray(lon, dtype=float) - lon0) * k * math.cos(math.radians(lat0))
        y = (np.asarray(lat, dtype=float) - lat0) * k
        return x, y

    def to_latlon(
        self, x: np.ndarray | float, y: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of :meth:`to_xy`."""
        lat0, lon0 = self.origin
        k = math.pi / 180 * _EARTH_RADIUS_KM
        lat = lat0 + np.asarray(y, dtype=float) / k
        lon = lon0 + np.asarray(x, dtype=float) / (k * math.cos(math.radians(lat0)))
        return lat, lon


def known_provinces() -> list[str]:
    """Names that :func:`load_province` accepts (the YAML files shipped in ingest/provinces)."""
    return sorted(p.stem for p in PROVINCES_DIR.glob("*.yaml"))


def load_province(name: str) -> Province:
    """Load ``ingest/provinces/{name}.yaml``, or a profile file when *name* is a path to one."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        path = candidate
    else:
        path = PROVINCES_DIR / f"{name}.yaml"
        if not name or candidate.name != name or not path.is_file():
            raise InputError(
                f"unknown province {name!r}; known: {', '.join(known_provinces()) or 'none'} "
                f"(add one as {PROVINCES_DIR.name}/<name>.yaml)"
            )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read the province profile: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: a province profile is a mapping of keys")
    data.setdefault("key", path.stem)
    try:
        province = Province(**data)
    except ValidationError as exc:
        where, message, _ = first_problem(exc)
        raise InputError(f"{path}: {where}: {message}") from exc
    outside = [t.name for t in province.towns if not province.bbox.contains(t.lat, t.lon)]
    if outside:
        raise InputError(f"{path}: towns outside the bbox: {', '.join(outside)}")
    return province
