"""Geography: projections (WGS 84, VN-2000, UTM) and distances; maps, zones and search to come."""

from gis.projections import distance_m, vn2000_to_wgs84, wgs84_to_vn2000

__all__ = ["distance_m", "vn2000_to_wgs84", "wgs84_to_vn2000"]
