"""The province simulator: determinism, physics, faults, events and their truth, files, stream."""

from __future__ import annotations

import asyncio
import itertools
import math
import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest import (
    PROBE_GM,
    PROBE_SCINTILLATOR,
    EventKind,
    ProvinceSimulator,
    RainCell,
    SimulationConfig,
    floor_time,
    known_provinces,
    load_province,
    simulate,
    stream,
    write_csvs,
)
from ingest.simulator.physics import Washout
from ingest.simulator.province import PROVINCES_DIR
from radmon.errors import InputError
from radmon.models import Reading

QUIET = {"rain": False, "events": False, "faults": False}


def collect(sim: ProvinceSimulator, steps: int) -> dict[str, np.ndarray]:
    """Step *sim* and return (steps x stations) matrices; NaN where a station did not report."""
    n = len(sim.stations)
    dose = np.full((steps, n), np.nan)
    precip = np.full((steps, n), np.nan)
    mean = np.empty((steps, n))
    rain = np.empty((steps, n))
    times = []
    for k in range(steps):
        result = sim.step()
        dose[k, result.station_index] = result.dose_rate_nsv_h
        precip[k, result.station_index] = result.precip_mm_h
        mean[k], rain[k] = result.mean_nsv_h, result.rain_mm_h
        times.append(result.time)
    return {"dose": dose, "precip": precip, "mean": mean, "rain": rain, "times": np.array(times)}


def half_life_min(values: np.ndarray, interval_s: float) -> float:
    """Half-life from a log-linear fit of a decaying series."""
    slope = np.polyfit(np.arange(len(values)) * interval_s / 60.0, np.log(values), 1)[0]
    return math.log(2) / -slope


# -- province profiles ------------------------------------------------------------------------


def test_quang_ninh_profile_has_its_towns_inside_the_province():
    province = load_province("quang_ninh")
    assert province.name == "Quảng Ninh"
    assert province.timezone == "Asia/Ho_Chi_Minh"
    assert "quang_ninh" in known_provinces()
    towns = {t.name: t for t in province.towns}
    assert {"Hạ Long", "Cẩm Phả", "Móng Cái", "Cô Tô", "Đông Triều"} <= set(towns)
    assert (towns["Hạ Long"].lat, towns["Hạ Long"].lon) == pytest.approx((20.95, 107.08), abs=0.05)
    assert all(province.bbox.contains(t.lat, t.lon) for t in province.towns)


def test_unknown_province_names_the_known_ones():
    with pytest.raises(InputError, match="quang_ninh"):
        load_province("atlantis")
    with pytest.raises(InputError, match="unknown province"):
        load_province("../provinces/quang_ninh")


def test_a_new_province_is_one_yaml_file(tmp_path: Path):
    data = (
        (PROVINCES_DIR / "quang_ninh.yaml")
        .read_text(encoding="utf-8")
        .replace("name: Quảng Ninh", "name: Test Province")
    )
    path = tmp_path / "test_province.yaml"
    path.write_text(data, encoding="utf-8")
    assert load_province(str(path)).name == "Test Province"
    bad = tmp_path / "bad.yaml"
    bad.write_text(data.replace("timezone: Asia/Ho_Chi_Minh", "timezone: Mars/Olympus"), "utf-8")
    with pytest.raises(InputError, match=r"bad\.yaml.*timezone"):
        load_province(str(bad))


# -- the network --------------------------------------------------------------------------------


def test_stations_sit_near_towns_with_mixed_probes_and_half_with_gauges():
    sim = ProvinceSimulator(SimulationConfig(n_stations=40, seed=3))
    stations = sim.stations
    province = sim.province
    assert [s.station_id for s in stations[:3]] == ["QN001", "QN002", "QN003"]
    assert stations[-1].station_id == "QN040"
    assert stations[0].name == "Hạ Long 1"
    towns = {t.name: t for t in province.towns}
    # every town gets a station before any gets a second
    assert {s.name.rsplit(" ", 1)[0] for s in stations} == set(towns)
    for s in stations:
        town = towns[s.name.rsplit(" ", 1)[0]]
        dx = (s.lon - town.lon) * 111.19 * math.cos(math.radians(town.lat))
        dy = (s.lat - town.lat) * 111.19
        assert math.hypot(dx, dy) <= town.jitter_km + 0.01, s
        assert s.timezone == "Asia/Ho_Chi_Minh" and s.district == town.district
        assert s.interval_s == 600
    gm = [s.sensitivity_cps_per_usv_h for s in stations if s.probe_model == PROBE_GM]
    nai = [s.sensitivity_cps_per_usv_h for s in stations if s.probe_model == PROBE_SCINTILLATOR]
    assert len(nai) == 12 and len(gm) == 28
    assert all(5 <= v <= 30 for v in gm) and all(300 <= v <= 1000 for v in nai)
    assert sum(s.has_rain_gauge for s in stations) == 20
    assert np.all((sim.network.background_nsv_h >= 60) & (sim.network.background_nsv_h <= 200))


def test_a_thousand_stations_get_wider_ids():
    sim = ProvinceSimulator(SimulationConfig(n_stations=1000, seed=1, gauge_fraction=0.25))
    assert sim.stations[0].station_id == "QN0001" and sim.stations[-1].station_id == "QN1000"
    assert sum(s.has_rain_gauge for s in sim.stations) == 250


def test_config_rejects_bad_values():
    with pytest.raises(InputError, match="aware"):
        SimulationConfig(start=datetime(2026, 1, 1))
    with pytest.raises(InputError, match="gauge_fraction"):
        SimulationConfig(gauge_fraction=1.5)
    with pytest.raises(InputError, match="n_stations"):
        SimulationConfig(n_stations=0)
    moment = datetime(2026, 3, 1, 10, 7, 31, 500, tzinfo=UTC)
    assert floor_time(moment, 600) == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


# -- determinism --------------------------------------------------------------------------------


def test_same_seed_same_data_and_another_seed_other_data():
    config = SimulationConfig(n_stations=12, seed=5, start=datetime(2026, 7, 1, tzinfo=UTC))
    first, again = simulate(config, days=3), simulate(config, days=3)
    pd.testing.assert_frame_equal(first.readings, again.readings)
    pd.testing.assert_frame_equal(first.events, again.events)
    pd.testing.assert_frame_equal(first.stations, again.stations)
    other = simulate(replace(config, seed=6), days=3)
    assert not other.stations[["lat", "lon"]].equals(first.stations[["lat", "lon"]])
    assert len(first.readings) > 0
    assert not np.array_equal(
        other.readings["dose_rate_nsv_h"].to_numpy()[:100],
        first.readings["dose_rate_nsv_h"].to_numpy()[:100],
    )


def test_switching_events_off_keeps_the_weather():
    config = SimulationConfig(n_stations=10, seed=2, start=datetime(2026, 8, 1, tzinfo=UTC))
    with_events = collect(ProvinceSimulator(config, horizon_days=3), 432)
    without = collect(ProvinceSimulator(replace(config, events=False), horizon_days=3), 432)
    assert with_events["rain"].max() > 0
    np.testing.assert_array_equal(with_events["rain"], without["rain"])


# -- background, counting noise, diurnal cycle --------------------------------------------------


def test_counting_noise_matches_each_probes_sensitivity():
    config = SimulationConfig(n_stations=30, seed=11, scintillator_fraction=0.5, **QUIET)
    sim = ProvinceSimulator(config)
    data = collect(sim, 432)  # 3 days of 10-min values
    dose, mean = data["dose"], data["mean"]
    sensitivity = sim.network.sensitivity_cps_per_usv_h
    station_means = dose.mean(axis=0)
    assert np.all((station_means > 55) & (station_means < 215))
    # Poisson: the spread of a reading around its true mean is √(counts) in counts
    expected_sd = np.sqrt(mean * 1e-3 * sensitivity * 600) * 1e3 / (sensitivity * 600)
    z = (dose - mean) / expected_sd
    nai = np.array([s.probe_model == PROBE_SCINTILLATOR for s in sim.stations])
    assert 0.9 < z[:, nai].std() < 1.1
    assert 0.9 < z[:, ~nai].std() < 1.1
    assert abs(z.mean()) < 0.05
    relative = ((dose - mean) / mean).std(axis=0)
    assert np.median(relative[nai]) < 0.2 * np.median(relative[~nai])


def test_diurnal_cycle_peaks_in_the_early_morning_local_time():
    config = SimulationConfig(
        n_stations=20, seed=4, interval_s=3600, scintillator_fraction=1.0, **QUIET
    )
    data = collect(ProvinceSimulator(config), 24 * 10)
    relative = data["dose"] / data["dose"].mean(axis=0)
    local_hours = np.array([(t.hour + 7) % 24 for t in data["times"]])  # Asia/Ho_Chi_Minh
    profile = np.array([relative[local_hours == h].mean() for h in range(24)])
    assert 3 <= int(np.argmax(profile)) <= 8
    assert 13 <= int(np.argmin(profile)) <= 20
    assert 0.02 < profile.max() - profile.min() < 0.14


# -- rain washout -------------------------------------------------------------------------------


def washout(background: float = 106.0, half_life: float = 37.5) -> Washout:
    return Washout(np.array([background]), np.array([1.0]), np.array([half_life]))


def test_washout_reproduces_the_reference_shower_at_any_interval():
    one_step = washout().advance(np.array([56.0]), 0.25)[0]  # 14 mm in 15 min
    assert one_step == pytest.approx(90.0, abs=0.5)  # 106 → 196 nSv/h (BfS, PTB)
    fine = washout()
    for _ in range(15):
        excess = fine.advance(np.array([56.0]), 1 / 60)[0]
    assert excess == pytest.approx(one_step, rel=1e-9)


def test_washout_grows_like_the_square_root_of_rain_rate():
    peaks = [washout().advance(np.array([rate]), 10 / 60)[0] for rate in (2.0, 8.0, 32.0)]
    assert 1.6 < peaks[1] / peaks[0] < 2.05  # √4 = 2, a little less as the air is depleted
    assert 1.6 < peaks[2] / peaks[1] < 2.05  # linear would be 4


def test_first_shower_after_a_dry_spell_gives_the_highest_peak():
    w = washout()
    shower = np.array([20.0])
    first = w.advance(shower, 0.25)[0]
    w.advance(np.array([0.0]), 3.0)
    second = w.advance(shower, 0.25)[0]
    w.advance(np.array([0.0]), 48.0)
    after_dry_spell = w.advance(shower, 0.25)[0]
    assert second < 0.9 * first
    assert after_dry_spell == pytest.approx(first, rel=0.02)


def test_rain_over_a_gauge_station_raises_its_dose_then_decays_in_30_to_45_min():
    config = SimulationConfig(
        n_stations=8, seed=21, scintillator_fraction=1.0, gauge_fraction=1.0, **QUIET
    )
    sim, dry = ProvinceSimulator(config), ProvinceSimulator(config)
    station = sim.stations[0]
    sim.add_rain_cell(
        RainCell(
            start=config.start + timedelta(hours=6),
            lat=station.lat,
            lon=station.lon,
            speed_kmh=15.0,
            heading_deg=90.0,
            radius_km=25.0,
            peak_mm_h=30.0,
            lifetime_h=1.0,
        )
    )
    wet, ref = collect(sim, 72), collect(dry, 72)
    rain, precip = wet["rain"][:, 0], wet["precip"][:, 0]
    raining = np.flatnonzero(rain > 0)
    assert len(raining) >= 4
    np.testing.assert_allclose(precip[raining], rain[raining], atol=0.01)  # the gauge sees it
    assert np.all(precip[: raining[0]] == 0) and np.all(ref["precip"][:, 0] == 0)
    excess = wet["dose"][:, 0] - ref["dose"][:, 0]
    peak = excess[raining].max()
    assert 30 < peak < 1.2 * sim.network.background_nsv_h[0]
    assert abs(excess[: raining[0]]).max() < 3  # nothing before the rain
    stop = raining[-1] + 1
    true_excess = wet["mean"][stop:, 0] - ref["mean"][stop:, 0]
    assert 30 <= half_life_min(true_excess[:12], 600) <= 45
    measured = excess[stop : stop + 9]  # the 1.5 h after the rain, on a low-noise probe
    assert 27 <= half_life_min(measured, 600) <= 50
    assert true_excess[18] < 0.1 * peak  # gone in 2–3 h


def test_precip_is_filled_for_gauge_stations_and_empty_for_the_others(tmp_path: Path):
    config = SimulationConfig(
        n_stations=10, seed=8, start=datetime(2026, 7, 1, tzinfo=UTC), rain_factor=3.0
    )
    result = simulate(config, days=2)
    gauges = set(result.stations.loc[result.stations["has_rain_gauge"], "station_id"])
    assert len(gauges) == 5
    readings = result.readings
    with_gauge = readings["station_id"].isin(gauges)
    assert readings.loc[~with_gauge, "precip_mm_h"].isna().all()
    assert readings.loc[with_gauge, "precip_mm_h"].notna().all()
    assert (readings.loc[with_gauge, "precip_mm_h"] > 0).any()
    path = tmp_path / "r.csv"
    write_csvs(result, path)
    lines = path.read_text().splitlines()
    no_gauge = next(s for s in result.stations["station_id"] if s not in gauges)
    assert all(line.endswith(",") for line in lines[1:] if f",{no_gauge}," in line)


# -- injected events and faults -----------------------------------------------------------------


@pytest.fixture(scope="module")
def event_runs() -> dict[str, object]:
    config = SimulationConfig(
        n_stations=30,
        seed=13,
        start=datetime(2026, 5, 1, tzinfo=UTC),
        faults=False,
        n_source_near_station=3,
        n_passing_source=3,
        n_regional_plume=2,
    )
    steps = 12 * 144
    sim = ProvinceSimulator(config, horizon_days=12)
    twin = ProvinceSimulator(replace(config, events=False), horizon_days=12)
    return {"sim": sim, "on": collect(sim, steps), "off": collect(twin, steps), "twin": twin}


def step_of(sim: ProvinceSimulator, moment: datetime) -> int:
    """Row index in collect()'s matrices of the reading stamped *moment*."""
    return round((moment - sim.config.start).total_seconds() / sim.config.interval_s) - 1


def test_events_appear_in_the_truth_table_as_configured(event_runs):
    sim, twin = event_runs["sim"], event_runs["twin"]
    kinds = [e.kind for e in sim.events]
    assert kinds.count(EventKind.SOURCE_NEAR_STATION) == 3
    assert kinds.count(EventKind.PASSING_SOURCE) == 3
    assert kinds.count(EventKind.REGIONAL_PLUME) == 2
    assert twin.events == []
    assert [e.event_id for e in sim.events] == [f"E{i:04d}" for i in range(1, 9)]


def test_a_source_near_a_station_raises_its_mean_by_the_stated_fraction(event_runs):
    sim, on, off = event_runs["sim"], event_runs["on"], event_runs["off"]
    ids = [s.station_id for s in sim.stations]
    background = sim.network.background_nsv_h
    for event in (e for e in sim.events if e.kind is EventKind.SOURCE_NEAR_STATION):
        i = ids.index(event.station_ids[0])
        assert event.added_nsv_h == pytest.approx(event.magnitude * background[i], abs=0.01)
        k0 = step_of(sim, event.start)
        k1 = step_of(sim, event.end) if event.end else len(on["times"]) - 1
        truth = on["mean"][:, i] - off["mean"][:, i]
        np.testing.assert_allclose(truth[k0 : k1 + 1], event.added_nsv_h, atol=0.01)
        gap = 18  # 3 h: no other event comes this close on the same station
        assert np.all(truth[k0 - gap : k0] == 0) and np.all(truth[k1 + 1 : k1 + 1 + gap] == 0)
        raised = on["dose"][k0 : k1 + 1, i].mean() / off["dose"][k0 : k1 + 1, i].mean() - 1
        expected = event.added_nsv_h / off["mean"][k0 : k1 + 1, i].mean()
        assert raised == pytest.approx(expected, abs=0.25 * expected + 0.02)


def test_a_passing_source_is_one_interval_at_least_twice_background(event_runs):
    sim, on, off = event_runs["sim"], event_runs["on"], event_runs["off"]
    ids = [s.station_id for s in sim.stations]
    for event in (e for e in sim.events if e.kind is EventKind.PASSING_SOURCE):
        i, k = ids.index(event.station_ids[0]), step_of(sim, event.start)
        assert event.start == event.end and event.magnitude >= 2
        background = sim.network.background_nsv_h[i]
        assert on["dose"][k, i] - off["dose"][k, i] > 1.5 * background
        assert on["mean"][k - 1, i] == off["mean"][k - 1, i]
        assert on["mean"][k + 1, i] == off["mean"][k + 1, i]


def test_a_regional_plume_raises_several_neighbouring_stations(event_runs):
    sim, on, off = event_runs["sim"], event_runs["on"], event_runs["off"]
    ids = [s.station_id for s in sim.stations]
    background = sim.network.background_nsv_h
    for event in (e for e in sim.events if e.kind is EventKind.REGIONAL_PLUME):
        assert len(event.station_ids) >= 2
        k0, k1 = step_of(sim, event.start), step_of(sim, event.end)
        assert k1 > k0
        affected = [ids.index(s) for s in event.station_ids]
        added = on["mean"][:, affected] - off["mean"][:, affected]
        assert np.all(added[k0 : k1 + 1].max(axis=0) >= 0.1 * background[affected] - 1e-9)
        assert np.all(added[k0 - 18 : k0] == 0) and np.all(added[k1 + 1 : k1 + 19] == 0)
        assert event.added_nsv_h == pytest.approx(added[k0 : k1 + 1].max(), abs=0.01)


def test_stations_without_events_are_untouched(event_runs):
    sim, on, off = event_runs["sim"], event_runs["on"], event_runs["off"]
    touched = {s for e in sim.events for s in e.station_ids}
    quiet = [i for i, s in enumerate(sim.stations) if s.station_id not in touched]
    assert quiet and len(quiet) < len(sim.stations)
    np.testing.assert_array_equal(on["mean"][:, quiet], off["mean"][:, quiet])


def test_events_never_overlap_on_a_station(event_runs):
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    end_of_run = event_runs["on"]["times"][-1]
    for event in event_runs["sim"].events:
        for station_id in event.station_ids:
            spans.setdefault(station_id, []).append((event.start, event.end or end_of_run))
    for station_spans in spans.values():
        station_spans.sort()
        for (_, end), (start, _) in itertools.pairwise(station_spans):
            assert start > end


@pytest.fixture(scope="module")
def fault_run() -> dict[str, object]:
    config = SimulationConfig(
        n_stations=20,
        seed=17,
        events=False,
        stuck_per_station_day=0.02,
        dropout_per_station_day=0.03,
    )
    sim = ProvinceSimulator(config, horizon_days=10)
    return {"sim": sim, "data": collect(sim, 1440)}


def test_dropouts_omit_rows(fault_run):
    sim, data = fault_run["sim"], fault_run["data"]
    ids = [s.station_id for s in sim.stations]
    dropouts = [e for e in sim.events if e.kind is EventKind.DROPOUT]
    assert len(dropouts) >= 2
    for event in dropouts:
        i, k0, k1 = (
            ids.index(event.station_ids[0]),
            step_of(sim, event.start),
            step_of(sim, event.end),
        )
        assert np.isnan(data["dose"][k0 : k1 + 1, i]).all()
        assert not np.isnan(data["dose"][k0 - 1, i])
        if k1 + 1 < len(data["times"]):
            assert not np.isnan(data["dose"][k1 + 1, i])
    missing = np.isnan(data["dose"]).sum()
    expected = sum(step_of(sim, e.end) - step_of(sim, e.start) + 1 for e in dropouts)
    assert missing == expected


def test_stuck_probes_repeat_one_value_for_hours(fault_run):
    sim, data = fault_run["sim"], fault_run["data"]
    ids = [s.station_id for s in sim.stations]
    stuck = [e for e in sim.events if e.kind is EventKind.STUCK]
    assert len(stuck) >= 2
    for event in stuck:
        i, k0, k1 = (
            ids.index(event.station_ids[0]),
            step_of(sim, event.start),
            step_of(sim, event.end),
        )
        assert (event.end - event.start) >= timedelta(hours=2) - timedelta(seconds=600)
        assert len(set(data["dose"][k0 : k1 + 1, i])) == 1
        assert len(set(data["dose"][k0 - 6 : k0, i])) > 1


# -- files --------------------------------------------------------------------------------------


def test_csv_round_trip_keeps_the_contract(tmp_path: Path):
    config = SimulationConfig(n_stations=6, seed=9, n_source_near_station=2)
    result = simulate(config, days=2)
    paths = [tmp_path / name for name in ("r.csv", "e.csv", "s.csv")]
    shuffled = replace(result, readings=result.readings.sample(frac=1.0, random_state=1))
    write_csvs(shuffled, *paths)
    text = paths[0].read_text().splitlines()
    assert text[0] == "time,station_id,dose_rate_nsv_h,precip_mm_h"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ,QN001,[0-9.]+,[0-9.]*", text[1])
    back = pd.read_csv(paths[0])
    assert len(back) == len(result.readings)
    times = pd.to_datetime(back["time"], utc=True)
    assert times.is_monotonic_increasing
    assert (back.groupby("time")["station_id"].apply(lambda s: s.is_monotonic_increasing)).all()
    pd.testing.assert_series_equal(
        times, result.readings["time"].reset_index(drop=True), check_names=False
    )
    np.testing.assert_allclose(
        back["dose_rate_nsv_h"], result.readings["dose_rate_nsv_h"], atol=0.005
    )
    assert back["precip_mm_h"].isna().sum() == result.readings["precip_mm_h"].isna().sum()
    events = pd.read_csv(paths[1])
    assert list(events.columns[:5]) == ["event_id", "kind", "start", "end", "station_ids"]
    assert len(events) == len(result.events)
    stations = pd.read_csv(paths[2])
    assert list(stations.columns[:8]) == [
        "station_id",
        "name",
        "lat",
        "lon",
        "elevation_m",
        "probe_model",
        "district",
        "timezone",
    ]
    assert stations["name"].iloc[0] == "Hạ Long 1"


def test_readings_become_valid_radmon_readings():
    sim = ProvinceSimulator(SimulationConfig(n_stations=6, seed=2, gauge_fraction=0.5))
    result = sim.step()
    readings = sim.to_readings(result)
    assert [r.station_id for r in readings] == [s.station_id for s in sim.stations]
    for reading, station in zip(readings, sim.stations, strict=True):
        Reading.model_validate(reading.model_dump())  # the trusted shortcut built valid data
        assert reading.time == sim.config.start + timedelta(seconds=600)
        assert (reading.precip_mm_h is not None) == station.has_rain_gauge
        assert reading.counts is not None and reading.uncertainty_nsv_h > 0
        assert reading.interval_s == 600


# -- live streaming -----------------------------------------------------------------------------


def test_stream_feeds_each_step_and_stops_when_asked():
    sim = ProvinceSimulator(SimulationConfig(n_stations=5, seed=1, interval_s=60))
    batches: list[list[Reading]] = []

    async def main() -> int:
        stop = asyncio.Event()

        def sink(readings: list[Reading]) -> None:
            batches.append(readings)
            if len(batches) == 5:
                stop.set()

        return await asyncio.wait_for(stream(sim, sink, speed=6000.0, stop=stop), timeout=2)

    assert asyncio.run(main()) == 5
    assert [len(b) for b in batches] == [5] * 5
    stamps = [b[0].time for b in batches]
    assert all(b - a == timedelta(seconds=60) for a, b in itertools.pairwise(stamps))


def test_stream_keeps_pace_and_accepts_an_async_sink():
    sim = ProvinceSimulator(SimulationConfig(n_stations=3, seed=1, interval_s=60))
    calls = []

    async def sink(readings: list[Reading]) -> None:
        await asyncio.sleep(0)
        calls.append(readings)

    async def main() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(stream(sim, sink, speed=600.0, stop=stop))  # a step per 0.1 s
        await asyncio.sleep(0.55)
        stop.set()
        return await asyncio.wait_for(task, timeout=1)

    sent = asyncio.run(main())
    assert 3 <= sent <= 7 and len(calls) == sent


def test_stream_returns_promptly_while_waiting_and_catches_up_a_backfill():
    sim = ProvinceSimulator(SimulationConfig(n_stations=3, seed=1, interval_s=600))
    calls = []

    async def main() -> float:
        stop = asyncio.Event()
        now = sim.time + timedelta(seconds=10 * 600)  # ten steps already due, the next in 600 s
        task = asyncio.create_task(stream(sim, calls.append, speed=1.0, stop=stop, now=now))
        await asyncio.sleep(0.2)
        began = time.monotonic()
        stop.set()
        assert await asyncio.wait_for(task, timeout=1) == 10
        return time.monotonic() - began

    assert asyncio.run(main()) < 0.5
    assert len(calls) == 10


def test_stream_survives_a_failing_sink():
    sim = ProvinceSimulator(SimulationConfig(n_stations=2, seed=1, interval_s=60))
    seen = []

    async def main() -> int:
        stop = asyncio.Event()

        def sink(readings: list[Reading]) -> None:
            seen.append(readings)
            if len(seen) == 1:
                raise ConnectionError("store down")
            stop.set()

        return await asyncio.wait_for(stream(sim, sink, speed=1e6, stop=stop), timeout=2)

    assert asyncio.run(main()) == 2
    assert len(seen) == 2
