"""Rollups refreshed apart from the write: every answer exact before, during and after a refresh.

On plain PostgreSQL a write only marks the hours it touched and ``Store.refresh_rollups``
recomputes them; SQLite keeps its rollups in the write (its refresh has nothing to do). The
answers must be the same either way, so every test runs on both backends unless it is about
the PostgreSQL queue itself.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from radmon.config import Settings, load_settings
from radmon.models import Reading, Resolution
from radmon.store import Store, bulk
from radmon.store.rollups import day_bucket, hour_bucket, touched_hours
from radmon.store.schema import readings_daily, readings_hourly, rollup_dirty
from tests.radmon.test_store_contract import STATIONS, T0, minute_series

FIRST, LAST = T0 - timedelta(days=2), T0 + timedelta(days=3)  # around every reading written


def queued(store: Store) -> bool:
    """Whether this store refreshes its rollups apart from the write."""
    return store.dialect == "postgresql" and not store.timescale


def marks(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(rollup_dirty)).scalar_one()


def write_in_batches(store: Store, data: list[Reading], size: int = 37, seed: int = 7) -> int:
    shuffled = data[:]
    random.Random(seed).shuffle(shuffled)
    return sum(store.write_readings(shuffled[i : i + size]) for i in range(0, len(shuffled), size))


def grouped(data: list[Reading], station_id: str, key: Callable[[datetime], datetime]) -> dict:
    groups: dict[datetime, list[float]] = defaultdict(list)
    for r in data:
        if r.station_id == station_id:
            groups[key(r.time)].append(r.dose_rate_nsv_h)
    return groups


def assert_answers(store: Store, data: list[Reading]) -> None:
    """series (hour, day) and stats (aligned and ragged periods) equal a direct computation."""
    zone = store.meta()["daily_timezone"]
    stations = sorted({r.station_id for r in data})
    for station_id in stations:
        for resolution, key in (
            (Resolution.HOUR, hour_bucket),
            (Resolution.DAY, lambda t: day_bucket(t, zone)),
        ):
            groups = grouped(data, station_id, key)
            points = store.series(station_id, FIRST, LAST, resolution)
            assert [p.time for p in points] == sorted(groups)
            for point in points:
                values = groups[point.time]
                assert point.count == len(values)
                assert point.mean_nsv_h == pytest.approx(sum(values) / len(values))
                assert (point.min_nsv_h, point.max_nsv_h) == (min(values), max(values))
    periods = [(FIRST, LAST), (T0, T0 + timedelta(hours=2)), (T0 + timedelta(minutes=47), LAST)]
    periods.append((T0 + timedelta(minutes=13), T0 + timedelta(hours=2, minutes=51)))
    for start, end in periods:
        got = {s.station_id: s for s in store.stats(start, end)}
        for station_id in stations:
            inside = [
                r.dose_rate_nsv_h
                for r in data
                if r.station_id == station_id and start <= r.time < end
            ]
            assert got[station_id].count == len(inside)
            if inside:
                assert got[station_id].mean_nsv_h == pytest.approx(sum(inside) / len(inside))
                assert got[station_id].min_nsv_h == min(inside)
                assert got[station_id].max_nsv_h == max(inside)


def assert_tables_exact(store: Store, data: list[Reading]) -> None:
    """The rollup tables themselves equal a direct computation (after a refresh)."""
    zone = store.meta()["daily_timezone"]
    keys = {readings_hourly: hour_bucket, readings_daily: lambda t: day_bucket(t, zone)}
    for table, key in keys.items():
        expected = {}
        for station_id in {r.station_id for r in data}:
            for bucket, values in grouped(data, station_id, key).items():
                expected[(station_id, bucket)] = (len(values), min(values), max(values))
        with store.engine.connect() as conn:
            c = table.c
            rows = conn.execute(select(c.station_id, c.bucket, c.n, c.min_nsv_h, c.max_nsv_h)).all()
        assert {(s, b): (n, lo, hi) for s, b, n, lo, hi in rows} == expected


def hours_of(data: list[Reading]) -> int:
    return len({hour_bucket(r.time) for r in data})


@pytest.fixture
def data() -> list[Reading]:
    return minute_series("QN001", 180) + minute_series("QN002", 120, seed=2)


def test_answers_are_exact_before_after_and_after_a_second_refresh(
    store: Store, data: list[Reading]
) -> None:
    store.upsert_stations(STATIONS)
    assert write_in_batches(store, data) == len(data)
    assert_answers(store, data)
    assert store.refresh_rollups() == (hours_of(data) if queued(store) else 0)
    assert marks(store) == 0
    assert_answers(store, data)
    assert_tables_exact(store, data)
    assert store.refresh_rollups() == 0
    assert_answers(store, data)
    assert_tables_exact(store, data)


def test_a_partial_refresh_leaves_every_answer_exact(store: Store, data: list[Reading]) -> None:
    store.upsert_stations(STATIONS)
    write_in_batches(store, data)
    if not queued(store):
        pytest.skip("this backend keeps its rollups in the write")
    assert store.refresh_rollups(limit=2) == 2
    assert marks(store) > 0
    assert_answers(store, data)
    assert store.refresh_rollups(limit=1) == 1
    assert_answers(store, data)
    assert store.refresh_rollups() == hours_of(data) - 3
    assert_tables_exact(store, data)


def test_a_late_reading_into_a_refreshed_hour_is_counted(store: Store, data: list[Reading]) -> None:
    store.upsert_stations(STATIONS)
    write_in_batches(store, data)
    store.refresh_rollups()
    # QN002 stopped after 120 minutes; its edge delivers a backlog into hours already refreshed.
    late = minute_series("QN002", 40, start=T0 + timedelta(minutes=125), seed=5)
    assert store.write_readings(late) == len(late)
    assert_answers(store, data + late)
    assert store.refresh_rollups() == (hours_of(late) if queued(store) else 0)
    assert_answers(store, data + late)
    assert_tables_exact(store, data + late)


def test_a_redelivered_batch_counts_once_and_marks_nothing(
    store: Store, data: list[Reading]
) -> None:
    store.upsert_stations(STATIONS)
    write_in_batches(store, data)
    store.refresh_rollups()
    assert write_in_batches(store, data, size=50, seed=11) == 0
    assert marks(store) == 0
    assert_answers(store, data)
    # Half redelivered, half new (one new hour): only the new readings count and mark.
    new = minute_series("QN001", 30, start=T0 + timedelta(hours=5), seed=9)
    assert store.write_readings(data[:30] + new + data[:30]) == 30
    assert marks(store) == (1 if queued(store) else 0)
    assert_answers(store, data + new)
    store.refresh_rollups()
    assert_answers(store, data + new)
    assert_tables_exact(store, data + new)


@pytest.mark.postgres
def test_a_mark_committed_during_a_refresh_survives_it(store: Store, data: list[Reading]) -> None:
    if not queued(store):
        pytest.skip("only the PostgreSQL rollup queue has marks to race on")
    store.upsert_stations(STATIONS)
    first = [r for r in data if r.time < T0 + timedelta(minutes=20)]
    later = [r for r in data if T0 + timedelta(minutes=20) <= r.time < T0 + timedelta(minutes=30)]
    store.write_readings(first)  # committed: marks 16:00 UTC
    with store.transaction() as conn:  # a writer whose transaction is still open
        assert bulk.write_postgres(conn, later, mark_hours=True, fresh=True) == later
        assert store.refresh_rollups() == 1  # claims the committed mark, cannot see `later`
    assert marks(store) == 1  # the writer's own mark for the same hour survived
    assert_answers(store, first + later)
    assert store.refresh_rollups() == 1
    assert_tables_exact(store, first + later)


@pytest.mark.postgres
def test_readings_and_their_marks_commit_or_roll_back_together(
    store: Store, data: list[Reading]
) -> None:
    """A crash between the COPY and the marks must lose both: never readings without marks."""
    if not queued(store):
        pytest.skip("only the PostgreSQL rollup queue has marks")
    store.upsert_stations(STATIONS)
    with store.engine.connect() as conn:  # a fresh connection: no statement run on it yet
        transaction = conn.begin()
        assert bulk.write_postgres(conn, data[:50], mark_hours=True, fresh=True) == data[:50]
        transaction.rollback()  # what the server does when the writer dies before COMMIT
    assert_answers(store, [])
    assert marks(store) == 0
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM readings").scalar() == 0


def test_concurrent_writers_and_refreshers_neither_lose_nor_double_count(
    store: Store,
) -> None:
    store.upsert_stations(STATIONS)
    data = minute_series("QN001", 600) + minute_series("QN002", 600, seed=3)
    errors: list[BaseException] = []
    writing_done = threading.Event()
    refreshes = [0, 0]

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        return run

    def writers() -> None:
        threads = [
            threading.Thread(target=guarded(lambda s=s: write_in_batches(store, data, 150, s)))
            for s in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        writing_done.set()

    def refresher(slot: int) -> None:
        for _ in range(10_000):  # bounded: the writers finish long before
            if writing_done.is_set():
                return
            store.refresh_rollups(limit=3)
            refreshes[slot] += 1

    threads = [threading.Thread(target=guarded(writers))]
    threads += [threading.Thread(target=guarded(lambda i=i: refresher(i))) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not errors
    assert all(refreshes)
    assert_answers(store, data)  # whatever the refreshers left marked
    store.refresh_rollups()
    assert marks(store) == 0
    assert_tables_exact(store, data)
    assert_answers(store, data)


@pytest.fixture
def kolkata_store(backend_settings: Settings) -> Iterator[Store]:
    """A store whose office zone is UTC+5:30: local days do not start on a UTC hour."""
    settings = load_settings(
        database={"url": backend_settings.database.url}, site={"timezone": "Asia/Kolkata"}
    )
    opened = Store.open(settings)
    opened.upgrade()
    try:
        yield opened
    finally:
        opened.close()


def test_daily_rollups_where_local_days_split_an_hour(kolkata_store: Store) -> None:
    store = kolkata_store
    store.upsert_stations(STATIONS)
    midnight = datetime.fromisoformat("2026-11-20T18:30:00+00:00")  # 00:00 in Kolkata
    data = minute_series("QN001", 60, start=midnight - timedelta(minutes=60))
    store.write_readings(data)
    store.refresh_rollups()
    assert_tables_exact(store, data)
    # Late readings after local midnight, in an hour whose first half was refreshed earlier.
    late = minute_series("QN002", 20, start=midnight + timedelta(minutes=5), seed=4)
    store.write_readings(late)
    assert_answers(store, data + late)
    store.refresh_rollups()
    assert_answers(store, data + late)
    assert_tables_exact(store, data + late)


def test_a_write_marks_each_utc_hour_it_touched_once() -> None:
    t = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
    moments = [t, t + timedelta(minutes=59, seconds=59), t + timedelta(hours=2), t]
    # a zone half an hour off UTC: the hour is still UTC's, not the zone's
    moments.append(datetime(2026, 11, 22, 9, 45, tzinfo=timezone(timedelta(hours=5, minutes=30))))
    assert touched_hours(moments) == [t, t + timedelta(hours=1), t + timedelta(hours=2)]
    assert all(h.tzinfo is UTC for h in touched_hours(moments))
    assert touched_hours([]) == []
