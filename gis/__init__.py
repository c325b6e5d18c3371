"""Geography: projections (WGS 84, VN-2000, UTM), distances, province outlines; more to come."""

from gis.outline import outline_attribution, outline_bytes, outline_path
from gis.projections import distance_m, vn2000_to_wgs84, wgs84_to_vn2000

__all__ = [
    "distance_m",
    "outline_attribution",
    "outline_bytes",
    "outline_path",
    "vn2000_to_wgs84",
    "wgs84_to_vn2000",
]
