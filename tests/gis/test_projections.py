import numpy as np
import pytest

from gis import distance_m, vn2000_to_wgs84, wgs84_to_vn2000
from radmon.errors import InputError

HA_LONG = (20.951, 107.078)  # WGS 84


def test_round_trip_geographic_within_a_millimetre() -> None:
    lat, lon = wgs84_to_vn2000(*HA_LONG)
    back = vn2000_to_wgs84(lat, lon)
    assert back == pytest.approx(HA_LONG, abs=1e-8)


def test_the_datum_shift_is_the_published_one() -> None:
    # In northern Vietnam VN-2000 coordinates sit a few hundred metres from WGS 84 ones
    # (EPSG:6960); a sign error in the rotations moves them by tens of metres more.
    lat, lon = wgs84_to_vn2000(*HA_LONG)
    shift = distance_m(HA_LONG[0], HA_LONG[1], lat, lon)
    assert 100 < float(shift) < 500
    assert float(wgs84_to_vn2000(*HA_LONG)[0]) != pytest.approx(HA_LONG[0], abs=1e-6)


def test_utm_zone_48_round_trip_and_vectorised() -> None:
    lats, lons = np.array([20.95, 21.52]), np.array([107.08, 107.97])
    east, north = wgs84_to_vn2000(lats, lons, utm_zone=48)
    assert np.all(east > 500_000)  # east of the 105°E central meridian
    assert np.all((north > 2_300_000) & (north < 2_400_000))
    back_lat, back_lon = vn2000_to_wgs84(east, north, utm_zone=48)
    assert np.allclose(back_lat, lats, atol=1e-8)
    assert np.allclose(back_lon, lons, atol=1e-8)


def test_unknown_utm_zone_is_refused() -> None:
    with pytest.raises(InputError, match="zone 50"):
        wgs84_to_vn2000(20.0, 107.0, utm_zone=50)


def test_geodesic_distance() -> None:
    # One degree of latitude near 21°N is about 110.7 km.
    assert float(distance_m(21.0, 107.0, 22.0, 107.0)) == pytest.approx(110_700, rel=0.002)
    assert distance_m([21.0, 21.0], [107.0, 107.0], 21.0, 107.0).tolist() == [0.0, 0.0]
