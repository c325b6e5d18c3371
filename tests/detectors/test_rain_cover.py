"""A station without a gauge next to a gauge that reports is covered by it.

A shower over a station without a gauge would be over a gauge within ``COVERED_KM`` too, so
such a station gets no unseen-rain spread (``UNSEEN_RAIN_SPREAD``) when a gauge in its area saw
rain; a station farther off (beyond ``COVERED_KM``, within the area) does. While its area has
been dry, its rain is known and a step there is not held for its shape.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors import run_frame
from detectors.engine import STEP_S
from detectors.rain import (
    COVERED_KM,
    CURRENT_INTERVALS,
    UNSEEN_RAIN_SPREAD,
    Washout,
    distances_km,
    neighbour_weights,
)
from detectors.unseen_rain import MIN_READINGS
from radmon.config import DetectionSettings
from radmon.models import Station
from tests.detectors.test_engine import (
    INTERVAL,
    SENSITIVITY,
    T0,
    K,
    at,
    engine,
    frame,
    ids_of,
    quiet,
    radiological,
    washout_bump,
)

RADIUS_KM = DetectionSettings().neighbour_km  # 25 km; the area is twice that
KM_PER_DEG = 6371.0 * np.pi / 180.0
DT_H = INTERVAL / 3600.0


def lat_of(north_km: list[float]) -> np.ndarray:
    """Latitudes of stations *north_km* north of one another on one meridian."""
    return 21.0 + np.array(north_km) / KM_PER_DEG


def washout(north_km: list[float]) -> Washout:
    lat = lat_of(north_km)
    km = distances_km(lat, np.full(len(lat), 107.0))
    w = Washout()
    w.grow(len(lat))
    w.set_neighbours(neighbour_weights(km, RADIUS_KM), km <= 2.0 * RADIUS_KM)
    return w


def on_a_meridian(north_km: list[float], gauges: set[int]) -> list[Station]:
    """Stations *north_km* north of one another; those at positions *gauges* have a gauge."""
    lat = lat_of(north_km)
    return [
        Station(
            station_id=f"ST{i:02d}",
            name=f"Station {i}",
            lat=float(lat[i]),
            lon=107.0,
            interval_s=INTERVAL,
            sensitivity_cps_per_usv_h=SENSITIVITY,
            has_rain_gauge=i in gauges,
        )
        for i in range(len(north_km))
    ]


def test_a_gauge_within_covered_km_keeps_its_neighbour_out_of_the_unseen_rain_spread() -> None:
    # a gauge, a station without one 2 km from it, another 20 km from it (within the radius)
    w = washout([0.0, 2.0, 20.0])
    idx = np.arange(3)
    interval = np.full(3, float(INTERVAL))
    for k, rain in enumerate([0.0, 2.0, 0.0, 0.0]):  # a shower at the gauge, then dry weather
        rate, measured, area_wet, covered = w.rain(
            np.full(3, k * INTERVAL), idx, np.array([rain, np.nan, np.nan]), interval
        )
        assert covered.tolist() == [False, True, False]
        if rain:
            assert area_wet.tolist() == [True, True, True]
        excess, unc, _ = w.advance(
            idx, rate, measured, area_wet, covered, np.full(3, DT_H if k else 0.0)
        )
    # 20 min after the shower only the far station's spread is widened
    assert excess[1] == pytest.approx(excess[2])  # both get the gauge's rain
    assert excess[1] > 0
    assert unc[1] == pytest.approx(excess[1])  # NEIGHBOUR_UNCERTAINTY only
    assert unc[2] == pytest.approx(np.hypot(excess[2], UNSEEN_RAIN_SPREAD))


def test_a_gauge_reporting_at_other_times_still_gives_its_rain() -> None:
    """Stations need not report in step: a gauge's latest rate stands for the rain around it
    for CURRENT_INTERVALS of its intervals either side of its time, and no further."""
    interval = np.array([float(INTERVAL)])
    span = int(CURRENT_INTERVALS * INTERVAL)

    def station_rain(gauge_at: int, station_at: int) -> tuple[float, bool]:
        w = washout([0.0, 2.0])
        w.rain(np.array([gauge_at]), np.array([0]), np.array([4.0]), interval)  # the gauge alone
        station = np.array([station_at])
        rate, measured, _, covered = w.rain(station, np.array([1]), np.array([np.nan]), interval)
        assert not measured[0]
        return float(rate[0]), bool(covered[0])

    assert station_rain(0, 300) == (4.0, True)  # five minutes after the gauge
    assert station_rain(300, 0) == (4.0, True)  # a gauge a little ahead (live arrival order)
    for late in (span + 1, -span - 1, -7200):  # too late; a backlog's gauge hours ahead
        rate, covered = station_rain(0, late)
        assert np.isnan(rate) and not covered


def covered_step(area_shower: bool, gauge_offset_s: int = 0, shift_s: int = 0) -> list:
    """A +30 % step at a station 2 km from a gauge that reports dry weather; with
    *area_shower*, a gauge 40 km off (within the area) saw a shower 1 h before. The station
    reports *shift_s* after the usual times, the gauges *gauge_offset_s* after the station."""
    stations = on_a_meridian([0.0, 2.0, 40.0], gauges={0, 2})
    times, _, x = quiet(n=3)
    times = times + pd.Timedelta(seconds=shift_s)
    x[K:, 1] *= 1.3
    precip = np.zeros_like(x)
    if area_shower:
        precip[K - 6 : K - 4, 2] = 2.0
    ids = ids_of(stations)
    gauge_times = times + pd.Timedelta(seconds=gauge_offset_s)
    readings = pd.concat(
        [
            frame(gauge_times, x[:, [0, 2]], [ids[0], ids[2]], precip[:, [0, 2]]),
            frame(times, x[:, [1]], [ids[1]]),
        ]
    )
    changes = run_frame(engine(stations=stations), readings)
    return [a for a in radiological(changes) if a.station_id == "ST01"]


def test_a_station_next_to_a_dry_gauge_is_not_held_unless_its_area_saw_rain() -> None:
    """Its rain is known while its area has been dry: a step alarms at once. After rain in the
    area a shower may have missed the gauge, so the step waits for its shape."""
    times = quiet(n=3)[0]
    [first, *_] = covered_step(area_shower=False)
    assert first.opened_at <= at(times, K + 1)
    [held, *_] = covered_step(area_shower=True)
    assert held.opened_at >= at(times, K + MIN_READINGS - 1)


@pytest.mark.parametrize("shift_s", [0, STEP_S - 60])
def test_a_station_that_reports_before_its_gauge_waits_only_for_the_gauge(shift_s: int) -> None:
    """The gauge's rate for the start of the rise comes two minutes after the station's
    reading. In the same step (one STEP_S window) the engine has it at once; when it falls in
    the next step, as live when it arrives later, the rise is held until then, one reading,
    not for its shape."""
    times = quiet(n=3)[0] + pd.Timedelta(seconds=shift_s)
    [first, *_] = covered_step(area_shower=False, gauge_offset_s=120, shift_s=shift_s)
    if shift_s == 0:
        assert first.opened_at == at(times, K)
    else:
        assert at(times, K) < first.opened_at <= at(times, K + 2)


def test_the_engine_counts_only_the_uncovered_station_as_wet() -> None:
    """A gauge 40 km off (beyond the radius, within the area) sees a shower while one nearby
    reports dry weather: the station 2 km from the dry gauge is dry, the one 12 km from it wet."""
    north = [0.0, 40.0, 2.0, 12.0]  # dry gauge, rainy gauge, covered station, uncovered one
    lat = lat_of(north)
    stations = on_a_meridian(north, gauges={0, 1})
    km = distances_km(lat, np.full(4, 107.0))
    assert km[2, 0] < COVERED_KM < km[3, 0] <= RADIUS_KM  # only ST02 is covered
    assert RADIUS_KM < km[2:, 1].min() <= km[2:, 1].max() <= 2 * RADIUS_KM  # beyond the radius
    steps = 4
    times = T0 + pd.to_timedelta(np.arange(steps) * INTERVAL, unit="s")
    precip = np.full((steps, 4), np.nan)
    precip[:, 0] = 0.0
    precip[:, 1] = [0.0, 2.0, 0.0, 0.0]  # a shower at the far gauge, then dry weather
    ids = [s.station_id for s in stations]
    df = pd.DataFrame(
        {
            "time": np.repeat(times, 4),
            "station_id": np.tile(ids, steps),
            "dose_rate_nsv_h": 100.0,
            "precip_mm_h": precip.ravel(),
        }
    )
    e = engine(stations=stations)
    run_frame(e, df)
    assert e.washout.wet()[e.rows(ids)].tolist() == [False, True, False, True]


@pytest.mark.parametrize("gauge_offset_s", [0, 120, -120])
def test_a_shower_at_a_covered_station_is_no_alarm_when_the_gauge_reports_at_other_times(
    gauge_offset_s: int,
) -> None:
    """A gauge and a station 2 km from it under the same shower, the gauge's clock a couple of
    minutes off: the station still gets the gauge's rain, so its washout is expected."""
    stations = on_a_meridian([0.0, 2.0], gauges={0})
    times, mean, x = quiet(n=2)
    rain = np.zeros(len(times))
    rain[K : K + 6] = 10.0  # a 1-hour shower of 10 mm/h over both
    for i in range(2):
        x[:, i] += washout_bump(mean[:, i], rain)
    assert washout_bump(mean[:, 1], rain).max() > 0.4 * mean[K, 1]  # a step test would fire
    gauge = frame(times + pd.Timedelta(seconds=gauge_offset_s), x[:, :1], ["ST00"], rain[:, None])
    station = frame(times, x[:, 1:], ["ST01"])
    changes = run_frame(engine(stations=stations), pd.concat([gauge, station]))
    assert radiological(changes) == []
