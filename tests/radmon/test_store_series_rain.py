"""Rain in a station's series: the reading's own at raw, the bucket's mean at hour and day.

Runs against SQLite and PostgreSQL; on plain PostgreSQL both before the rollups are refreshed
(marked hours are read from raw readings) and after (the rollups keep a count and a sum of
the rain rates).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import TableClause, column, insert, table

from radmon.config import Settings, load_settings
from radmon.models import Reading, Resolution, Station
from radmon.store import Store
from radmon.store.rollups import aggregate, day_bucket, hour_bucket
from radmon.store.schema import UTCDateTime, readings
from tests.radmon.older_schema import upgrade_to
from tests.radmon.test_store_contract import T0

GAUGE = Station(station_id="RAIN1", name="Bãi Cháy (gauge)", lat=20.96, lon=107.05, interval_s=600)
DRY = Station(station_id="DRY1", name="Uông Bí", lat=21.04, lon=106.77, interval_s=600)
FIRST, LAST = T0 - timedelta(days=2), T0 + timedelta(days=3)


def rain_at(i: int, moment: datetime) -> float | None:
    """A gauge that reports now and then: every third reading none, and every fourth hour
    none at all; of the rest some dry, some wet."""
    if i % 3 == 0 or moment.hour % 4 == 3:
        return None
    return 0.0 if i % 5 == 0 else round(0.4 * (i % 7), 1)


def ten_minute_readings(start: datetime, n: int) -> list[Reading]:
    readings = []
    for i in range(n):
        moment = start + timedelta(minutes=10 * i)
        readings.append(
            Reading(
                station_id=GAUGE.station_id,
                time=moment,
                dose_rate_nsv_h=80.0 + i % 11,
                precip_mm_h=rain_at(i, moment),
            )
        )
        readings.append(Reading(station_id=DRY.station_id, time=moment, dose_rate_nsv_h=90.0))
    return readings


def expected_rain(
    data: list[Reading], key: Callable[[datetime], datetime]
) -> dict[datetime, float | None]:
    """Per bucket of the gauge: the mean of the rain values given, None where none was."""
    values: dict[datetime, list[float]] = defaultdict(list)
    for r in data:
        if r.station_id != GAUGE.station_id:
            continue
        values.setdefault(key(r.time), [])
        if r.precip_mm_h is not None:
            values[key(r.time)].append(r.precip_mm_h)
    return {b: (sum(v) / len(v) if v else None) for b, v in values.items()}


def assert_rain(store: Store, data: list[Reading]) -> None:
    raw = store.series(GAUGE.station_id, FIRST, LAST, Resolution.RAW)
    gauge = [r for r in data if r.station_id == GAUGE.station_id]
    assert [p.precip_mm_h for p in raw] == [r.precip_mm_h for r in gauge]

    zone = store.meta()["daily_timezone"]
    for resolution, key in (
        (Resolution.HOUR, hour_bucket),
        (Resolution.DAY, lambda t: day_bucket(t, zone)),
    ):
        expected = expected_rain(data, key)
        points = store.series(GAUGE.station_id, FIRST, LAST, resolution)
        assert [p.time for p in points] == sorted(expected), resolution
        for point in points:
            want = expected[point.time]
            if want is None:
                assert point.precip_mm_h is None, (resolution, point.time)
            else:
                assert point.precip_mm_h == pytest.approx(want), (resolution, point.time)
        dry = store.series(DRY.station_id, FIRST, LAST, resolution)
        assert dry and all(p.precip_mm_h is None for p in dry)


def test_rain_in_the_series_at_every_resolution(store: Store) -> None:
    store.upsert_stations([GAUGE, DRY])
    # 26 hours from 23:30 local: two local days, hours with and without rain values
    data = ten_minute_readings(T0, 156)
    store.write_readings(data)
    assert any(p is None for p in expected_rain(data, hour_bucket).values())
    assert_rain(store, data)  # plain PostgreSQL: every hour still marked, read from raw
    store.refresh_rollups()
    assert_rain(store, data)


def test_a_period_inside_one_bucket_gets_the_whole_bucket_mean(store: Store) -> None:
    store.upsert_stations([GAUGE, DRY])
    data = ten_minute_readings(T0 + timedelta(minutes=30), 6)  # 00:00–00:50 local
    store.write_readings(data)
    store.refresh_rollups()
    start = T0 + timedelta(minutes=55)
    (point,) = store.series(GAUGE.station_id, start, start + timedelta(minutes=2), Resolution.HOUR)
    values = [r.precip_mm_h for r in data if r.station_id == "RAIN1" and r.precip_mm_h is not None]
    assert point.count == 6
    assert point.precip_mm_h == pytest.approx(sum(values) / len(values))


@pytest.fixture
def kolkata_store(backend_settings: Settings) -> Iterator[Store]:
    """An office zone of UTC+5:30: local days begin in the middle of a UTC hour."""
    settings = load_settings(
        database={"url": backend_settings.database.url}, site={"timezone": "Asia/Kolkata"}
    )
    opened = Store.open(settings)
    opened.upgrade()
    try:
        yield opened
    finally:
        opened.close()


def test_daily_rain_follows_local_days_that_split_an_hour(kolkata_store: Store) -> None:
    store = kolkata_store
    store.upsert_stations([GAUGE, DRY])
    midnight = datetime.fromisoformat("2026-11-20T18:30:00+00:00")  # 00:00 in Kolkata
    data = ten_minute_readings(midnight - timedelta(hours=3), 36)
    store.write_readings(data)
    days = store.series(GAUGE.station_id, FIRST, LAST, Resolution.DAY)
    assert [p.time for p in days] == [midnight - timedelta(days=1), midnight]
    assert_rain(store, data)
    store.refresh_rollups()
    assert_rain(store, data)


def test_the_upgrade_puts_the_rain_already_stored_into_the_rollups(
    backend_settings: Settings,
) -> None:
    store = Store.open(backend_settings)
    try:
        upgrade_to(store.engine, "0006")  # rollups without rain, as radmon kept them then
        store.upsert_stations([GAUGE, DRY])
        data = ten_minute_readings(T0, 156)
        rows = [(r.station_id, r.time, r.dose_rate_nsv_h, r.precip_mm_h) for r in data]
        hourly, daily = aggregate(rows, "Asia/Ho_Chi_Minh")
        with store.engine.begin() as conn:
            conn.execute(readings.insert(), [r.model_dump() for r in data])
            for name, aggregates in (("readings_hourly", hourly), ("readings_daily", daily)):
                conn.execute(
                    insert(_rollup_of_0006(name)),
                    [
                        {"station_id": s, "bucket": b, "n": n, "sum_nsv_h": total}
                        | {"min_nsv_h": low, "max_nsv_h": high}
                        for (s, b), (n, total, low, high, *_rain) in aggregates.items()
                    ],
                )
        store.upgrade()
        assert_rain(store, data)  # nothing marked: every bucket from the rollups
    finally:
        store.close()


def _rollup_of_0006(name: str) -> TableClause:
    return table(
        name,
        *(column(c) for c in ("station_id", "n", "sum_nsv_h", "min_nsv_h", "max_nsv_h")),
        column("bucket", UTCDateTime),
    )
