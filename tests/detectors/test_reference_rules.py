"""The peer rules (BfS mean + 20, Japanese mean ± 3σ rain/dry, fixed 1.5×) on hand-made data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors import reference_rules as rr
from radmon.models import Station

T0 = pd.Timestamp("2026-06-01T00:00:00Z")
STEP = pd.Timedelta(minutes=10)
TRAIN_UNTIL = T0 + pd.Timedelta(days=1)


def series(
    station: str,
    values: list[float] | np.ndarray,
    precip: list[float] | np.ndarray | None = None,
    first: pd.Timestamp = T0,
) -> pd.DataFrame:
    """One station's readings every 10 minutes from *first*."""
    n = len(values)
    return pd.DataFrame(
        {
            "time": first + STEP * np.arange(n),
            "station_id": station,
            "dose_rate_nsv_h": np.asarray(values, dtype=float),
            "precip_mm_h": np.full(n, np.nan) if precip is None else np.asarray(precip, float),
        }
    )


def at(step: int) -> pd.Timestamp:
    return T0 + STEP * step


def flat_day_then(station: str, later: list[float], level: float = 100.0) -> pd.DataFrame:
    """A day of training at exactly *level*, then the *later* readings."""
    return series(station, [level] * 144 + later)


def test_bfs_alarms_above_mean_plus_20_and_merges_exceedances_within_an_hour():
    # after the training day: 119 (no), 121 (yes), 3 quiet readings, 130 (same episode),
    # then 7 quiet readings (70 min) and 125 (a new episode), then quiet to the end
    later = [119, 121, 100, 100, 100, 130] + [100] * 7 + [125] + [100] * 10
    alarms = rr.bfs_alarms(flat_day_then("A", later), train_until=TRAIN_UNTIL)
    assert list(alarms.columns) == rr.ALARM_COLUMNS
    assert len(alarms) == 2
    first, second = alarms.iloc[0], alarms.iloc[1]
    assert first["start"] == at(145) and first["end"] == at(149)
    assert first["peak_nsv_h"] == 130 and first["baseline_nsv_h"] == 100
    assert second["start"] == at(157) and second["end"] == at(157)
    assert set(alarms["category"]) == {"radiological"}
    assert set(alarms["severity"]) == {"warning"}
    assert set(alarms["kind"]) == {rr.KIND_BFS}


def test_an_episode_is_still_open_when_the_data_end_within_the_hour():
    alarms = rr.bfs_alarms(flat_day_then("A", [100, 150, 100, 100]), train_until=TRAIN_UNTIL)
    assert len(alarms) == 1
    assert alarms.iloc[0]["start"] == at(145)
    assert pd.isna(alarms.iloc[0]["end"])


def test_fixed_factor_alarms_above_one_and_a_half_times_the_mean():
    readings = flat_day_then("A", [149, 100, 151, 100] + [100] * 8, level=100.0)
    alarms = rr.fixed_factor_alarms(readings, train_until=TRAIN_UNTIL)
    assert len(alarms) == 1
    assert alarms.iloc[0]["start"] == at(146)
    assert alarms.iloc[0]["peak_nsv_h"] == 151
    assert alarms.iloc[0]["kind"] == rr.KIND_FIXED


def test_rules_learn_per_station_and_ignore_input_order():
    a = flat_day_then("A", [125] + [100] * 8, level=100.0)
    b = flat_day_then("B", [125] + [100] * 8, level=110.0)  # threshold 130: no alarm
    readings = pd.concat([a, b]).sample(frac=1.0, random_state=3)
    alarms = rr.bfs_alarms(readings, train_until=TRAIN_UNTIL)
    assert list(alarms["station_id"]) == ["A"]


def test_a_station_without_training_readings_never_alarms():
    late = series("C", [500.0] * 10, first=TRAIN_UNTIL + pd.Timedelta(hours=1))
    readings = pd.concat([flat_day_then("A", [100] * 5), late])
    assert rr.bfs_alarms(readings, train_until=TRAIN_UNTIL).empty
    assert rr.japan_alarms(readings, train_until=TRAIN_UNTIL).empty


def test_known_incidents_are_left_out_of_training():
    values = [100.0] * 144
    values[60:90] = [300.0] * 30  # an incident inside the training day
    readings = series("A", values + [121.0] + [100.0] * 8)
    learnt_it = rr.bfs_alarms(readings, train_until=TRAIN_UNTIL)
    # the incident lifted the mean to 141.67: it alarms itself, but 121 is not above 161.67
    assert list(learnt_it["start"]) == [at(60)]
    assert learnt_it.iloc[0]["baseline_nsv_h"] == pytest.approx(141.67)
    exclude = pd.DataFrame({"station_id": ["A"], "start": [at(60)], "end": [at(89)]})
    alarms = rr.bfs_alarms(readings, train_until=TRAIN_UNTIL, exclude=exclude)
    assert list(alarms["start"]) == [at(60), at(144)]
    assert list(alarms["baseline_nsv_h"]) == [100, 100]
    # an open-ended span (end NaT) leaves out everything from its start
    open_span = exclude.assign(end=pd.NaT)
    mask = rr.training_mask(rr.prepare_readings(readings), TRAIN_UNTIL, open_span)
    assert mask.sum() == 60


def test_default_training_window_is_seven_days_from_the_first_reading():
    readings = series("A", [100.0] * 10)
    assert rr.default_train_until(readings) == T0 + pd.Timedelta(days=7)


def japan_station(station: str, gauge: bool) -> pd.DataFrame:
    """Training day: dry readings 95/105 alternating (mean 100, σ ≈ 5), and three rain spells
    where the gauge shows rain and the dose reads 150/170 (mean 160, σ ≈ 10); then the test
    readings."""
    values = np.where(np.arange(144) % 2 == 0, 95.0, 105.0)
    precip = np.zeros(144)
    for first in (20, 60, 100):
        precip[first : first + 6] = 2.0
        values[first : first + 12] = np.where(np.arange(12) % 2 == 0, 150.0, 170.0)
    # after training: dry 121 (alarm: dry upper ≈ 115), rain starts, 175 in rain (no alarm:
    # rain upper ≈ 190), rain stops; 40 min later 175 (still the rain range), 70 min later
    # 175 (dry range: alarm)
    later_values = [100, 121, 100, 100, 100, 100, 100, 100, 175, 100, 100, 100, 175]
    later_values += [100, 100, 175] + [100] * 8
    later_precip = [0, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0] + [0] * 8
    readings = series(
        station,
        np.concatenate([values, later_values]),
        np.concatenate([precip, later_precip]) if gauge else None,
    )
    return readings


def test_japan_uses_the_rain_range_while_the_gauge_shows_rain_and_for_an_hour_after():
    readings = japan_station("G", gauge=True)
    alarms = rr.japan_alarms(readings, train_until=TRAIN_UNTIL)
    # 121 at step 145 (dry range); 175 at 152 is rain, 175 at 156 is 40 min after the last
    # rain (step 152): rain range; 175 at 159 is 70 min after: dry range
    assert list(alarms["start"]) == [at(145), at(159)]
    assert alarms.iloc[0]["baseline_nsv_h"] == pytest.approx(100.0, abs=0.5)
    assert set(alarms["kind"]) == {rr.KIND_JAPAN}


def test_japan_station_without_gauge_uses_the_dry_range_learnt_from_all_readings():
    readings = japan_station("N", gauge=False)
    frame = rr.prepare_readings(readings)
    training = frame[frame["time"] < TRAIN_UNTIL]["dose_rate_nsv_h"]
    upper = training.mean() + 3 * training.std()
    alarms = rr.japan_alarms(readings, train_until=TRAIN_UNTIL)
    later = frame[frame["time"] >= TRAIN_UNTIL]
    expected = later.loc[later["dose_rate_nsv_h"] > upper, "time"]
    assert upper > 175  # the rain readings widened the single range
    assert list(alarms["start"]) == list(expected)
    assert alarms.empty


def test_japan_takes_the_gauge_from_the_stations_when_given():
    readings = japan_station("G", gauge=True)
    no_gauge = Station(station_id="G", name="G", lat=21.0, lon=107.0, has_rain_gauge=False)
    with_gauge = Station(station_id="G", name="G", lat=21.0, lon=107.0, has_rain_gauge=True)
    assert len(rr.japan_alarms(readings, [with_gauge], train_until=TRAIN_UNTIL)) == 2
    # told there is no gauge, the rule ignores the precip column and uses one range
    assert rr.japan_alarms(readings, [no_gauge], train_until=TRAIN_UNTIL).empty


def test_japan_falls_back_to_all_readings_when_training_saw_too_little_rain():
    values = np.where(np.arange(144) % 2 == 0, 95.0, 105.0)
    precip = np.zeros(144)
    precip[50:52] = 1.0  # 20 min of rain: in rain state from step 50 to 57 (8 readings)
    values[50:58] = 100.0  # a rain range of exactly 100 ± 0
    readings = series("G", np.concatenate([values, [100, 103]]), np.concatenate([precip, [2, 2]]))
    enough = rr.japan_alarms(readings, train_until=TRAIN_UNTIL)
    assert list(enough["start"]) == [at(145)]  # 103 is above the rain range 100 ± 0
    too_few = rr.japan_alarms(readings, train_until=TRAIN_UNTIL, min_rain_readings=9)
    assert too_few.empty  # judged against all training readings: 100 ± 3 × 5


def test_rain_state_looks_back_one_hour_at_the_stations_own_gauge():
    frame = rr.prepare_readings(
        pd.concat(
            [
                series("G", [100.0] * 10, [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
                series("H", [100.0] * 10, [0] * 10),
            ]
        )
    )
    wet = rr.rain_state(frame, {"G", "H"})
    g = wet[frame["station_id"].to_numpy() == "G"]
    h = wet[frame["station_id"].to_numpy() == "H"]
    assert g.tolist() == [False, True, True, True, True, True, True, True, False, False]
    assert not h.any()


def test_the_columns_match_the_engines():
    detectors = pytest.importorskip("detectors")
    if not hasattr(detectors, "ALARM_COLUMNS"):
        pytest.skip("the engine does not expose ALARM_COLUMNS yet")
    assert detectors.ALARM_COLUMNS == rr.ALARM_COLUMNS
