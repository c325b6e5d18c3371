"""A rise at a station without a gauge waits until its shape rules out washout.

The synthetic network of ``test_engine`` with no gauges at all unless a test gives them one: a
washout-shaped bump (a shower none of them sees) raises nothing, a flat step is confirmed within
the hour, a one-reading spike must be a real source, and a restart inside a hold changes nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors import episodes_frame, run_frame
from detectors.unseen_rain import (
    BACK,
    BACK_RELATIVE,
    BEFORE,
    LEVEL_MIN,
    MIN_READINGS,
    SUSTAINED_H,
    UNSEEN_TRANSIENT_RELATIVE,
    WINDOW,
    UnseenRain,
)
from tests.detectors.test_engine import (
    INTERVAL,
    K,
    at,
    engine,
    frame,
    ids_of,
    network,
    quiet,
    radiological,
    run,
    washout_bump,
)


@pytest.mark.parametrize("rate_mm_h", [2.0, 10.0, 20.0])
def test_showers_no_gauge_sees_raise_nothing(rate_mm_h: float) -> None:
    times, mean, x = quiet()
    for start, station in ((K, 1), (K + 40, 3), (K + 80, 5)):
        rain = np.zeros(len(times))
        rain[start : start + 3] = rate_mm_h  # a 30-minute shower
        x[:, station] += washout_bump(mean[:, station], rain)
    assert radiological(run(times, x)) == []


@pytest.mark.parametrize("factor", [1.2, 1.3, 1.5])
def test_a_flat_step_without_a_gauge_is_held_then_confirmed_within_the_hour(factor: float) -> None:
    times, _, x = quiet()
    x[K : K + 60, 2] *= factor
    rad = radiological(run(times, x))
    assert {a.station_id for a in rad} == {"ST02"}
    assert {a.kind for a in rad} == {"step"}
    first = rad[0]
    # held for the readings a decay needs to show, and never past the hour
    assert at(times, K + MIN_READINGS - 1) <= first.opened_at <= at(times, K + 6)
    assert first.details["opened"]["test"] == "step"


def test_the_same_step_at_a_station_with_a_gauge_is_not_held() -> None:
    times, _, x = quiet()
    x[K : K + 60, 2] *= 1.3
    [first, *_] = radiological(run(times, x, precip=np.zeros_like(x)))
    assert first.opened_at <= at(times, K + 1)


def test_a_one_reading_spike_without_a_gauge_must_look_like_a_source() -> None:
    times, mean, x = quiet()
    below = 0.7 * UNSEEN_TRANSIENT_RELATIVE
    x[K, 1] = (1.0 + below) * mean[K, 1]  # what a burst of first rain can do
    x[K + 30, 3] = 3.0 * mean[K + 30, 3]  # a source carried past the probe
    rad = radiological(run(times, x))
    assert [(a.station_id, a.kind, a.opened_at) for a in rad if a.cleared_at is None] == [
        ("ST03", "transient", at(times, K + 30))
    ]
    # with a gauge reporting dry weather the smaller spike is a passing source too
    gauged = radiological(run(times, x, precip=np.zeros_like(x)))
    assert {a.station_id for a in gauged} == {"ST01", "ST03"}


@pytest.mark.parametrize("split", [K + 1, K + 2, K + MIN_READINGS - 1])
def test_a_restart_inside_a_hold_gives_the_uninterrupted_alarms(split: int) -> None:
    times, _, x = quiet()
    x[K : K + 60, 2] *= 1.3
    df = frame(times, x, ids_of(network()))
    whole = run_frame(engine(), df)
    first = engine()
    before = run_frame(first, df[df.time < times[split]])
    assert radiological(before) == []  # still held at the split
    second = engine()
    second.restore(first.snapshot())
    after = run_frame(second, df[df.time >= times[split]])
    assert radiological(whole), "the step must be confirmed"
    pd.testing.assert_frame_equal(episodes_frame(before + after), episodes_frame(whole))


def test_a_rise_that_is_no_step_still_alarms_once_it_outlasts_any_shower() -> None:
    times, _, x = quiet(days=3.0)
    ramp = np.concatenate([np.linspace(1.0, 1.4, 8), np.full(len(times) - K - 8, 1.4)])
    x[K:, 2] *= ramp  # builds up over 80 minutes, like widespread rain, and then stays
    rad = radiological(run(times, x))
    assert {a.station_id for a in rad} == {"ST02"}
    held = (rad[0].opened_at - at(times, K)).total_seconds() / 3600.0
    assert 0.9 * SUSTAINED_H <= held <= SUSTAINED_H + 2.0


# -- UnseenRain.judge on its own -----------------------------------------------------------------


def judged(
    excess: np.ndarray, var: float = 1e-4, before: float = 0.0, dry_h: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Drive one UnseenRain with *excess* (readings × stations, relative) after BEFORE readings
    at *before*, firing all along, its area dry for *dry_h* hours; returns what it confirmed
    and its held counts."""
    unseen = UnseenRain()
    stations = excess.shape[1]
    unseen.grow(stations)
    idx = np.arange(stations)
    variance, interval = np.full(stations, var), np.full(stations, float(INTERVAL))
    dry = np.full(stations, dry_h)
    for _ in range(BEFORE):
        quiet = np.full(stations, before)
        unseen.judge(idx, np.zeros(stations, bool), quiet, variance, interval, dry)
    confirmed, held = [], []
    for row in excess:
        confirmed.append(unseen.judge(idx, np.ones(stations, bool), row, variance, interval, dry))
        held.append(unseen.table.n[idx].copy())
    return np.array(confirmed), np.array(held)


def test_a_held_rise_back_at_the_background_ends_its_hold_though_the_cusum_stays_up() -> None:
    """BACK/BACK_RELATIVE: a two-reading rise whose excess is back at 0 ends its hold after BACK
    readings (and never reaches SUSTAINED_H), while a rise that stays up keeps its hold and
    opens at SUSTAINED_H."""
    readings = round(SUSTAINED_H * 3600 / INTERVAL) + 4
    excess = np.zeros((readings, 2))
    excess[:2, 0] = 0.2  # a shower no gauge sees, gone after two readings
    excess[:, 1] = np.minimum(0.05 * np.arange(1, readings + 1), 0.2)  # a ramp, then a level
    assert excess[BACK - 1 :, 1].mean() > BACK_RELATIVE
    confirmed, held = judged(excess)
    assert not confirmed[:, 0].any()
    assert held[:, 0].max() == BACK and held[BACK, 0] == 0  # the hold restarts
    assert held[WINDOW - 1, 1] == WINDOW  # the rise at +0.2 stays held...
    [opened] = np.flatnonzero(confirmed[:, 1])
    assert SUSTAINED_H <= opened * INTERVAL / 3600.0 <= SUSTAINED_H + 0.5  # ...and opens


def test_a_level_up_before_the_hold_is_a_step_once_the_area_has_been_dry_throughout() -> None:
    """A step that began while a shower nearby widened the spread (so the CUSUM fired only
    later, with no background reading left before the hold) is confirmed after MIN_READINGS
    once no gauge in the area has seen rain since before the readings judged; while the area
    may still have rained on it, it waits as before."""
    excess = np.full((BACK, 1), 0.2)
    settled_h = (BEFORE + MIN_READINGS) * INTERVAL / 3600.0
    confirmed, _ = judged(excess, before=0.2, dry_h=settled_h)
    assert np.flatnonzero(confirmed[:, 0]).tolist() == [MIN_READINGS - 1]
    confirmed, _ = judged(excess, before=0.2, dry_h=settled_h - 0.5)
    assert not confirmed.any()


def test_a_full_window_slides_on_and_confirms_once_the_area_has_been_dry_throughout() -> None:
    """A hold that began while its area was wet filled its window before the area was dry
    long enough; the window then waited for SUSTAINED_H (a +50 % source went unreported for
    7 h). It slides on, and the level is a step once the area has been dry for all of it."""
    unseen = UnseenRain()
    unseen.grow(1)
    idx, var, interval = np.arange(1), np.full(1, 1e-4), np.full(1, float(INTERVAL))
    step_h = INTERVAL / 3600.0
    for _ in range(BEFORE):
        unseen.judge(idx, np.zeros(1, bool), np.full(1, 0.4), var, interval, np.zeros(1))
    confirmed_at = None
    for k in range(round(SUSTAINED_H / step_h)):
        dry_h = np.full(1, max(0.0, (k - 2) * step_h))  # the area dried two readings in
        if unseen.judge(idx, np.ones(1, bool), np.full(1, 0.4), var, interval, dry_h)[0]:
            confirmed_at = k
            break
    assert confirmed_at is not None
    assert WINDOW <= confirmed_at <= BEFORE + WINDOW + 3


def test_a_step_below_level_min_is_no_step() -> None:
    """LEVEL_MIN: a flat rise of 3 % (a tail of washout) is not confirmed by the shape test, one
    of 6 % is, after MIN_READINGS; the tiny variance leaves only the level to tell them apart."""
    excess = np.tile([0.6 * LEVEL_MIN, 1.2 * LEVEL_MIN], (BACK, 1))
    confirmed, _ = judged(excess, var=1e-6)
    assert not confirmed[:, 0].any()
    assert np.flatnonzero(confirmed[:, 1]).tolist() == [MIN_READINGS - 1]
