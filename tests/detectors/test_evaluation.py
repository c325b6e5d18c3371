"""The scorer: matching, delays, false alarms, rain split and the Lorden floor, by hand; then a
short simulated scenario end to end with the reference rules."""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd
import pytest

from bench import detection as ev
from detectors import ALARM_COLUMNS

T0 = pd.Timestamp("2026-06-10T00:00:00Z")
RUN_END = pd.Timestamp("2026-06-20T00:00:00Z")
INTERVAL = 600
H = pd.Timedelta(hours=1)
M = pd.Timedelta(minutes=1)


def events(*rows: tuple) -> pd.DataFrame:
    """Truth rows (event_id, kind, start, end, station_ids, magnitude) as the simulator's."""
    frame = pd.DataFrame(
        rows, columns=["event_id", "kind", "start", "end", "station_ids", "magnitude"]
    )
    frame["start"] = pd.to_datetime(frame["start"], utc=True)
    frame["end"] = pd.to_datetime(frame["end"], utc=True)
    return frame


def alarms(*rows: tuple) -> pd.DataFrame:
    """Alarm rows (station_id, start, end, category)."""
    frame = pd.DataFrame(rows, columns=["station_id", "start", "end", "category"])
    frame["kind"] = "test"
    frame["severity"] = "warning"
    frame["peak_nsv_h"] = 200.0
    frame["baseline_nsv_h"] = 100.0
    return frame[ALARM_COLUMNS]


def by_id(matches: pd.DataFrame) -> pd.DataFrame:
    return matches.set_index("event_id")


# -- matching ------------------------------------------------------------------------------------

TRUTH = events(
    ("S20", "source_near_station", T0, T0 + 5 * H, "A", 0.2),
    ("S10", "source_near_station", T0, T0 + 10 * H, "B", 0.1),
    ("P1", "passing_source", T0, T0, "C", 5.0),
    ("P2", "passing_source", T0, T0, "D", 3.0),
    ("PL", "regional_plume", T0, T0 + 4 * H, "E;F", 0.8),
    ("ST", "stuck", T0, T0 + 3 * H, "G", None),
    ("X2", "source_near_station", RUN_END - 2 * H, None, "H", 1.0),
    ("S50", "source_near_station", T0, T0 + 2 * H, "I", 0.5),
)
ALARMS = alarms(
    ("A", T0 + 20 * M, T0 + 2 * H, "radiological"),  # S20: delay 2
    ("A", T0 + 30 * M, T0 + 40 * M, "radiological"),  # a later one: ignored
    ("B", T0 + 7 * H, None, "radiological"),  # S10: 7 h > the 6 h target
    ("C", T0 - 30 * M, None, "radiological"),  # P1: open before it: delay 0
    ("D", T0 - 2 * H, T0 - 10 * M, "radiological"),  # closed before P2: no
    ("D", T0, T0, "technical"),  # wrong category for P2: no
    ("E", T0 + 80 * M, T0 + 2 * H, "radiological"),  # PL on E: delay 8
    ("F", T0 + 40 * M, T0 + 3 * H, "radiological"),  # PL on F: delay 4 (first)
    ("G", T0 + 50 * M, T0 + 3 * H, "technical"),  # ST: delay 5
    ("G", T0 + 10 * M, T0 + H, "radiological"),  # wrong category for ST, and false
    ("H", RUN_END + 30 * M, None, "radiological"),  # X2 open-ended: run end + 1 h counts
    ("I", T0 + 2 * H + 61 * M, None, "radiological"),  # S50: 61 min after its end: too late
)


@pytest.fixture(scope="module")
def matched() -> pd.DataFrame:
    return by_id(ev.match_events(TRUTH, ALARMS, interval_s=INTERVAL, run_end=RUN_END))


def test_detection_takes_the_first_alarm_of_the_right_category(matched):
    assert matched["detected"].to_dict() == {
        "S20": True,
        "S10": True,
        "P1": True,
        "P2": False,
        "PL": True,
        "ST": True,
        "X2": True,
        "S50": False,
    }


def test_delays_count_intervals_from_the_first_affected_reading(matched):
    delays = matched["delay_intervals"]
    assert delays["S20"] == 2
    assert delays["S10"] == 42
    assert delays["P1"] == 0  # still open at the event's start
    assert delays["PL"] == 4  # the first of its stations
    assert delays["ST"] == 5
    assert delays["X2"] == 15  # 2 h 30 min after an open-ended start
    assert math.isnan(delays["P2"]) and math.isnan(delays["S50"])
    assert matched.loc["S10", "delay_min"] == 420


def test_targets_depend_on_the_class(matched):
    assert matched["event_class"].to_dict() == {
        "S20": "source +20%",
        "S10": "source +10%",
        "P1": "passing_source",
        "P2": "passing_source",
        "PL": "regional_plume",
        "ST": "stuck",
        "X2": "source ×2",
        "S50": "source +50%",
    }
    within = matched["within_target"].to_dict()
    assert within["S20"] and within["P1"] and within["PL"] and within["ST"]
    assert not within["S10"]  # 7 h: beyond +10 %'s 6 h
    assert not within["X2"]  # 2.5 h: beyond ×2's 1 h
    assert not within["P2"] and not within["S50"]


def test_a_passing_source_caught_one_reading_late_is_detected_but_not_within_target():
    truth = events(("P", "passing_source", T0, T0, "C", 5.0))
    late = alarms(("C", T0 + 10 * M, T0 + 10 * M, "radiological"))
    row = ev.match_events(truth, late, interval_s=INTERVAL, run_end=RUN_END).iloc[0]
    assert row["detected"] and row["delay_intervals"] == 1 and not row["within_target"]


def test_an_earlier_long_alarm_still_open_counts_even_behind_a_short_closed_one():
    truth = events(("S", "source_near_station", T0, T0 + 6 * H, "A", 0.2))
    overlapping = alarms(
        ("A", T0 - 3 * H, T0 + H, "radiological"),  # long, still open at T0
        ("A", T0 - H, T0 - 50 * M, "radiological"),  # short, closed before T0
    )
    row = ev.match_events(truth, overlapping, interval_s=INTERVAL, run_end=RUN_END).iloc[0]
    assert row["detected"] and row["delay_intervals"] == 0


def test_no_alarms_means_nothing_detected():
    matches = ev.match_events(TRUTH, alarms(), interval_s=INTERVAL, run_end=RUN_END)
    assert len(matches) == len(TRUTH)
    assert not matches["detected"].any()
    assert matches["delay_intervals"].isna().all()


# -- rain -----------------------------------------------------------------------------------------


def rain_frame(stations: list[str], wet: dict[str, list[pd.Timestamp]], mm_h: float = 2.0):
    grid = pd.date_range(T0 - 12 * H, T0 + 12 * H, freq="10min")
    frame = pd.DataFrame(0.0, index=grid, columns=stations)
    for station, times in wet.items():
        frame.loc[times, station] = mm_h
    return frame


def test_an_event_is_in_rain_from_3_h_before_to_1_h_after_its_start():
    truth = events(
        ("a", "passing_source", T0, T0, "A", 3.0),  # rain 2 h before
        ("b", "passing_source", T0, T0, "B", 3.0),  # rain 3 h 30 min before: dry
        ("c", "passing_source", T0, T0, "C", 3.0),  # rain 50 min after
        ("d", "passing_source", T0, T0, "D", 3.0),  # rain 70 min after: dry
        ("e", "passing_source", T0, T0, "E", 3.0),  # drizzle of exactly 0.1 mm/h: dry
        ("p", "regional_plume", T0, T0 + H, "D;A", 0.5),  # one of its stations in rain
    )
    rain = rain_frame(
        list("ABCDE"),
        {"A": [T0 - 2 * H], "B": [T0 - 3.5 * H], "C": [T0 + 50 * M], "D": [T0 + 70 * M]},
    )
    rain.loc[T0, "E"] = 0.1
    matches = ev.match_events(truth, alarms(), interval_s=INTERVAL, run_end=RUN_END, rain=rain)
    assert by_id(matches)["in_rain"].to_dict() == {
        "a": 1.0,
        "b": 0.0,
        "c": 1.0,
        "d": 0.0,
        "e": 0.0,
        "p": 1.0,
    }


def test_without_rain_truth_the_split_is_unknown():
    matches = ev.match_events(TRUTH, ALARMS, interval_s=INTERVAL, run_end=RUN_END)
    assert matches["in_rain"].isna().all()
    summary = ev.summarize_matches(matches).set_index(["event_class", "split"])
    assert summary.loc[("source +20%", "all"), "n"] == 1
    assert summary.loc[("source +20%", "dry"), "n"] == 0
    assert summary.loc[("source +20%", "rain"), "n"] == 0


# -- false alarms ---------------------------------------------------------------------------------


def test_false_alarms_are_those_outside_every_event_window_of_their_category():
    truth = events(
        ("S", "source_near_station", T0, T0 + 5 * H, "A", 0.2),
        ("O", "source_near_station", T0, None, "B", 0.5),
        ("F", "stuck", T0, T0 + 2 * H, "C", None),
    )
    raised = alarms(
        ("A", T0 - 50 * M, T0 - 40 * M, "radiological"),  # within 1 h before: true
        ("A", T0 - 70 * M, T0 - 61 * M, "radiological"),  # ends 61 min before: false
        ("A", T0 + 7 * H + 59 * M, None, "radiological"),  # 2 h 59 after the end: true
        ("A", T0 + 8 * H + M, T0 + 9 * H, "radiological"),  # 3 h 01 after: false
        ("B", RUN_END - H, None, "radiological"),  # open-ended event: true
        ("C", T0 + H, T0 + 2 * H, "radiological"),  # a fault does not excuse it: false
        ("C", T0 + H, T0 + 2 * H, "technical"),  # matches the stuck probe: true
        ("A", T0 + H, T0 + 2 * H, "technical"),  # a source does not excuse it: false
    )
    flags = ev.flag_false_alarms(truth, raised, run_end=RUN_END)
    assert flags["false"].tolist() == [False, True, False, True, False, True, False, True]
    assert flags["in_rain"].isna().all()
    summary = ev.summarize_false_alarms(flags, station_years=0.5)
    assert summary["radiological_alarms"] == 6
    assert summary["false_radiological"] == 3
    assert summary["false_per_station_year"] == 6.0
    assert summary["false_technical"] == 1
    assert summary["false_technical_per_station_year"] == 2.0
    assert math.isnan(summary["false_in_rain"])


def test_a_false_alarm_is_in_rain_when_it_rained_within_the_3_h_before_its_start():
    raised = alarms(
        ("A", T0, None, "radiological"),  # rain 2 h 50 min before: in rain
        ("B", T0, None, "radiological"),  # rain 3 h 10 min before: dry
        ("C", T0, None, "radiological"),  # rain 10 min after its start: dry
        ("D", T0, None, "radiological"),  # rain at its start: in rain
        ("Z", T0, None, "radiological"),  # a station the rain table does not know: dry
    )
    rain = rain_frame(
        list("ABCD"),
        {"A": [T0 - 170 * M], "B": [T0 - 190 * M], "C": [T0 + 10 * M], "D": [T0]},
    )
    flags = ev.flag_false_alarms(events(), raised, run_end=RUN_END, rain=rain)
    assert flags["false"].all()
    assert flags["in_rain"].tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]
    summary = ev.summarize_false_alarms(flags, station_years=2.0)
    assert summary["false_in_rain"] == 2
    assert summary["false_in_rain_per_station_year"] == 1.0
    assert summary["false_per_station_year"] == 2.5


def test_chance_of_a_false_alarm_in_a_window_follows_the_rate():
    assert ev.chance_of_false_alarm(0.0, 6.0) == 0.0
    # 8766 per station-year is one an hour: P(at least one in 1 h) = 1 - 1/e
    assert ev.chance_of_false_alarm(8766.0, 1.0) == pytest.approx(1 - math.exp(-1))
    assert ev.chance_of_false_alarm(100.0, 6.0) > ev.chance_of_false_alarm(100.0, 1.0)


def test_station_years_follow_stations_and_days():
    scenario = ev.build_scenario(5, ev.ScenarioSpec(days=2, n_stations=4, n_source_near_station=0))
    assert scenario.station_years == pytest.approx(4 * 2 / 365.25)


# -- summaries ------------------------------------------------------------------------------------


def test_summary_gives_pod_and_delay_percentiles_per_class_and_split():
    n = 10
    matches = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "kind": "source_near_station",
            "event_class": "source +20%",
            "start": T0,
            "in_rain": [0.0] * 6 + [1.0] * 4,
            "detected": [True] * 8 + [False] * 2,
            "delay_intervals": [0, 1, 2, 3, 4, 5, 10, 20, np.nan, np.nan],
        }
    )
    matches["delay_min"] = matches["delay_intervals"] * 10
    matches["within_target"] = matches["detected"] & (matches["delay_min"] <= 60)
    summary = ev.summarize_matches(matches).set_index("split")
    overall = summary.loc["all"]
    assert overall["n"] == 10 and overall["detected"] == 8
    assert overall["pod"] == 0.8 and overall["pod_target"] == 0.6
    assert overall["median_delay"] == 3.5
    assert overall["p90_delay"] == pytest.approx(np.percentile([0, 1, 2, 3, 4, 5, 10, 20], 90))
    assert overall["median_delay_min"] == 35
    dry, wet = summary.loc["dry"], summary.loc["rain"]
    assert (dry["n"], dry["detected_target"], dry["median_delay"]) == (6, 6, 2.5)
    assert (wet["n"], wet["detected"], wet["detected_target"]) == (4, 2, 0)


# -- the Lorden floor -----------------------------------------------------------------------------


def test_lorden_floor_matches_a_hand_computation():
    # 100 nSv/h on a 10 cps per µSv/h probe over 600 s: λ0 = 600 counts; a +20 % step
    lambda0, lambda1 = 600.0, 720.0
    divergence = 720.0 * math.log(1.2) - 120.0  # 11.2715...
    arl0 = 365.25 * 86400 / 600  # 52596 readings: one false alarm per station-year
    assert ev.intervals_per_station_year(600) == pytest.approx(52596.0)
    expected = math.log(arl0) / divergence
    assert expected == pytest.approx(0.96443, abs=1e-4)
    assert ev.lorden_floor_intervals(lambda0, 0.2, arl0) == pytest.approx(expected)
    assert lambda1 == lambda0 * 1.2
    # small steps: D ≈ λ0 δ² / 2, so the floor grows like 1/δ²
    small = ev.lorden_floor_intervals(lambda0, 0.01, arl0)
    assert small == pytest.approx(math.log(arl0) / (lambda0 * 0.01**2 / 2), rel=0.01)
    floors = ev.lorden_floor_intervals(np.array([600.0, 60.0]), np.array([0.2, 0.2]), arl0)
    assert floors[1] == pytest.approx(10 * floors[0])


def test_step_floors_use_the_training_mean_and_the_probes_sensitivity(scenario):
    floors = ev.step_floors(scenario).set_index("event_id")
    steps = scenario.events[scenario.events["kind"] == "source_near_station"]
    assert set(floors.index) == set(steps["event_id"])
    row = steps.iloc[0]
    station = row["station_ids"]
    readings = scenario.readings
    mine = readings[(readings["station_id"] == station) & (readings["time"] < scenario.train_until)]
    spans = scenario.incident_spans()
    spans = spans[spans["station_id"] == station]
    for span in spans.itertuples():
        end = span.end if not pd.isna(span.end) else RUN_END + pd.Timedelta(days=999)
        mine = mine[(mine["time"] < span.start) | (mine["time"] > end)]
    sensitivity = scenario.stations.set_index("station_id").loc[station]
    lambda0 = mine["dose_rate_nsv_h"].mean() * 1e-3 * sensitivity["sensitivity_cps_per_usv_h"]
    lambda0 *= scenario.interval_s
    assert floors.loc[row["event_id"], "lambda0"] == pytest.approx(lambda0)
    assert floors.loc[row["event_id"], "floor_intervals"] == pytest.approx(
        ev.lorden_floor_intervals(lambda0, row["magnitude"], 52596.0)
    )


# -- simulated scenarios end to end ---------------------------------------------------------------

REFERENCE = ("bfs", "japan", "fixed_1.5x")
SMALL = ev.ScenarioSpec(
    days=10,
    n_stations=16,
    n_source_near_station=16,
    n_passing_source=6,
    n_regional_plume=1,
    training_days=3,
)


@pytest.fixture(scope="module")
def scenario() -> ev.Scenario:
    return ev.build_scenario(7, SMALL)


@pytest.fixture(scope="module")
def wet_report() -> ev.EvaluationReport:
    return ev.evaluate([7, 8], SMALL, detectors=REFERENCE)


@pytest.fixture(scope="module")
def dry_report() -> ev.EvaluationReport:
    dry = ev.ScenarioSpec(
        days=10,
        n_stations=16,
        n_source_near_station=24,
        n_passing_source=0,
        n_regional_plume=0,
        training_days=3,
        rain_factor=0.0,
    )
    return ev.evaluate([7], dry, detectors=("fixed_1.5x", "bfs"))


def test_the_simulator_gives_the_true_rain_of_every_station(scenario):
    rain = scenario.rain_mm_h
    assert rain is not None
    assert list(rain.columns) == list(scenario.stations["station_id"])
    assert rain.index[0] == scenario.start + pd.Timedelta(seconds=INTERVAL)
    assert rain.index[-1] == scenario.run_end
    assert (rain.to_numpy() > ev.RAIN_THRESHOLD_MM_H).any()
    gauged = scenario.readings.dropna(subset=["precip_mm_h"])
    truth = rain.stack().rename("rain").reset_index()
    joined = gauged.merge(truth, on=["time", "station_id"])
    assert len(joined) == len(gauged)
    np.testing.assert_allclose(joined["precip_mm_h"], joined["rain"].round(2))


def test_a_scenario_reports_the_events_it_placed(scenario):
    kinds = scenario.events["kind"].value_counts()
    placed = int(kinds.get("source_near_station", 0))
    assert placed + scenario.unplaced["source_near_station"] == 16
    assert scenario.events["start"].min() > scenario.start + pd.Timedelta(hours=24)


def test_the_report_has_every_detector_class_and_scope(wet_report):
    report = wet_report
    assert report.detectors == list(REFERENCE)
    assert set(report.detection["scope"]) == {"seed 7", "seed 8", "pooled"}
    pooled = report.detection[report.detection["scope"] == "pooled"]
    assert set(pooled["detector"]) == set(REFERENCE)
    assert set(pooled["split"]) == {"all", "dry", "rain"}
    assert {"source ×2", "passing_source"} <= set(pooled["event_class"])
    # pooled counts are the sum of the seeds'
    per_seed = report.detection[report.detection["scope"] != "pooled"]
    for (name, cls, split), group in per_seed.groupby(["detector", "event_class", "split"]):
        mine = pooled[
            (pooled["detector"] == name)
            & (pooled["event_class"] == cls)
            & (pooled["split"] == split)
        ]
        assert mine["n"].item() == group["n"].sum()
        assert mine["detected"].item() == group["detected"].sum()
    # probabilities and rates are sane
    assert pooled["pod"].dropna().between(0, 1).all()
    assert (pooled["pod_target"].dropna() <= pooled["pod"].dropna()).all()
    assert (report.false_alarms["false_radiological"] >= 0).all()
    fa = report.false_alarms.set_index(["detector", "scope"])
    assert fa.loc[("bfs", "pooled"), "station_years"] == pytest.approx(2 * 16 * 10 / 365.25)


def test_every_reference_rule_catches_a_doubling_and_a_passing_source(wet_report):
    pooled = wet_report.detection[
        (wet_report.detection["scope"] == "pooled") & (wet_report.detection["split"] == "all")
    ].set_index(["detector", "event_class"])
    for name in REFERENCE:
        for cls in ("source ×2", "passing_source"):
            row = pooled.loc[(name, cls)]
            assert row["n"] > 0
            assert row["pod_target"] == 1.0, (name, cls)
            assert row["median_delay"] == 0.0


def test_bfs_has_false_alarms_and_nearly_all_of_them_in_rain(wet_report):
    fa = wet_report.false_alarms.set_index(["detector", "scope"]).loc[("bfs", "pooled")]
    assert fa["false_radiological"] > 10
    assert fa["false_in_rain"] >= 0.9 * fa["false_radiological"]
    listed = wet_report.alarms[wet_report.alarms["detector"] == "bfs"]
    assert int(listed["false"].sum()) == fa["false_radiological"]
    assert (listed.loc[listed["false"], "in_rain"] == 1.0).sum() == fa["false_in_rain"]
    # the rain-aware Japanese ranges cut them, though not to zero
    japan = wet_report.false_alarms.set_index(["detector", "scope"]).loc[("japan", "pooled")]
    assert japan["false_radiological"] < fa["false_radiological"]


def test_without_rain_fixed_factor_misses_every_small_step_and_has_no_false_alarm(dry_report):
    matches = dry_report.matches
    fixed = matches[matches["detector"] == "fixed_1.5x"]
    small = fixed[fixed["event_class"] == "source +10%"]
    doubling = fixed[fixed["event_class"] == "source ×2"]
    assert len(small) > 0 and len(doubling) > 0
    assert not small["detected"].any()
    assert doubling["detected"].all() and (doubling["delay_intervals"] == 0).all()
    assert (fixed["in_rain"] == 0.0).all()
    fa = dry_report.false_alarms.set_index(["detector", "scope"])
    assert fa.loc[("fixed_1.5x", "pooled"), "false_radiological"] == 0


def test_the_tables_are_markdown(wet_report):
    text = ev.format_report(wet_report)
    assert text.startswith("# Detection evaluation")
    for heading in ("## Events placed", "## Detection, pooled over seeds", "## False alarms"):
        assert heading in text
    assert "## Detection, seed 8" in text
    table_lines = [line for line in text.splitlines() if line.startswith("|")]
    assert all(line.endswith("|") for line in table_lines)
    assert any("*Lorden floor*" in line for line in table_lines)
    assert any(line.startswith("| source ×2 | fixed_1.5x | ≤ 1 h | 100%") for line in table_lines)


def test_radmon_is_skipped_with_a_reason_when_the_engine_cannot_be_imported(monkeypatch):
    monkeypatch.setitem(sys.modules, "detectors.frames", None)  # the import fails
    spec = ev.ScenarioSpec(days=2, n_stations=4, n_source_near_station=1)
    report = ev.evaluate([3], spec, detectors=("radmon", "bfs"))
    assert report.detectors == ["bfs"]
    assert "detect_frame" in report.skipped["radmon"]
    assert "radmon skipped" in ev.format_report(report)


def test_unknown_detectors_are_refused():
    with pytest.raises(ValueError, match="unknown detector"):
        ev.evaluate([1], ev.ScenarioSpec(days=1, n_stations=2), detectors=("nope",))


def test_the_module_prints_the_tables(capsys):
    code = ev.main(["--seeds", "4", "--days", "2", "--stations", "5", "--detectors", "bfs"])
    out = capsys.readouterr().out
    assert code == 0
    assert "## False alarms" in out and "| bfs | pooled |" in out


def test_stations_on_their_own_clocks_are_scored_on_the_simulated_times() -> None:
    """With a clock spread each station's readings reach the detectors a fixed offset later,
    stations apart from one another; the alarms come back to the simulated times, so a
    passing source is still caught in its own interval."""
    spec = ev.ScenarioSpec(
        days=3,
        n_stations=8,
        n_source_near_station=0,
        n_passing_source=4,
        n_regional_plume=0,
        training_days=1,
        clock_spread_s=600,
    )
    scenario = ev.build_scenario(7, spec)
    offsets = scenario.clock_offsets
    assert set(offsets) == set(scenario.stations["station_id"])
    assert all(0 <= s < 600 for s in offsets.values()) and len(set(offsets.values())) > 1
    seen = scenario.stamped_readings()
    moved = (seen["time"] - scenario.readings["time"]).dt.total_seconds()
    assert (moved == seen["station_id"].map(offsets)).all()
    alarms = ev.run_detector("fixed_1.5x", scenario)
    matches = ev.match_events(
        scenario.events, alarms, interval_s=spec.interval_s, run_end=scenario.run_end
    )
    passing = matches[matches["kind"] == "passing_source"]
    assert len(passing) and passing["within_target"].all()
    assert (passing["delay_intervals"] == 0).all()
