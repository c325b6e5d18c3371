"""Coordinates: WGS 84 (what probes and maps use) and VN-2000 (what Vietnamese surveys use).

The datum shift is EPSG:6960 ("VN-2000 to WGS 84 (2)") taken from PROJ's database by name:
hand-written towgs84 strings often carry the rotation signs the wrong way round.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Geod, Transformer
from pyproj.transformer import TransformerGroup

from radmon.errors import InputError

WGS84 = "EPSG:4326"
VN2000 = "EPSG:4756"
VN2000_UTM = {48: "EPSG:3405", 49: "EPSG:3406"}
VN2000_TO_WGS84 = "VN-2000 to WGS 84 (2)"  # EPSG:6960
_GEOD = Geod(ellps="WGS84")


@cache
def _transformer(source: str, target: str) -> Transformer:
    """A transformer that uses EPSG:6960 whenever VN-2000 is on one side."""
    group = TransformerGroup(CRS(source), CRS(target), always_xy=True)
    for candidate in group.transformers:
        if VN2000_TO_WGS84 in candidate.name or "VN-2000" not in candidate.name:
            return candidate
    raise InputError(f"no {VN2000_TO_WGS84} operation between {source} and {target}")


def wgs84_to_vn2000(lat: ArrayLike, lon: ArrayLike, utm_zone: int | None = None) -> tuple:
    """WGS 84 to VN-2000: geographic (lat, lon), or (easting, northing) in UTM 48N/49N."""
    target = VN2000 if utm_zone is None else _utm(utm_zone)
    x, y = _transformer(WGS84, target).transform(lon, lat)
    return (y, x) if utm_zone is None else (x, y)


def vn2000_to_wgs84(a: ArrayLike, b: ArrayLike, utm_zone: int | None = None) -> tuple:
    """VN-2000 to WGS 84 (lat, lon); input is (lat, lon), or (easting, northing) with a zone."""
    source = VN2000 if utm_zone is None else _utm(utm_zone)
    x, y = (b, a) if utm_zone is None else (a, b)
    lon, lat = _transformer(source, WGS84).transform(x, y)
    return lat, lon


def _utm(zone: int) -> str:
    try:
        return VN2000_UTM[zone]
    except KeyError as exc:
        raise InputError(f"VN-2000 UTM zone {zone} is not 48 or 49") from exc


def distance_m(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike
) -> NDArray[np.float64]:
    """Geodesic distance on the WGS 84 ellipsoid, in metres (broadcasts like numpy)."""
    a, b, c, d = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (lat1, lon1, lat2, lon2))
    )
    _, _, dist = _GEOD.inv(b, a, d, c)
    return np.asarray(dist, dtype=float)
