"""The store's contract, run unchanged against SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from radmon.config import load_settings
from radmon.models import AlarmState, Reading, Resolution, Severity, Station, reading_row
from radmon.store import SchemaNotReady, Store
from radmon.store.schema import alarms, readings, readings_daily, readings_hourly

T0 = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)  # 23:30 local (UTC+7): a day boundary soon
STATIONS = [
    Station(station_id="QN001", name="Hạ Long 1", lat=20.95, lon=107.08, interval_s=60),
    Station(station_id="QN002", name="Móng Cái", lat=21.52, lon=107.97, interval_s=60),
    Station(station_id="QN003", name="Cô Tô (no data)", lat=20.97, lon=107.76, interval_s=600),
]


def minute_series(station_id: str, n: int, start: datetime = T0, seed: int = 1) -> list[Reading]:
    rng = random.Random(seed)
    return [
        Reading(
            station_id=station_id,
            time=start + timedelta(minutes=i),
            dose_rate_nsv_h=round(rng.uniform(60, 200), 3),
            precip_mm_h=rng.choice([None, 0.0, 4.2]),
        )
        for i in range(n)
    ]


@pytest.fixture
def filled(store: Store) -> tuple[Store, list[Reading]]:
    store.upsert_stations(STATIONS)
    data = minute_series("QN001", 180) + minute_series("QN002", 120, seed=2)
    assert store.write_readings(data) == len(data)
    return store, data


def count(store: Store, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def rollup_total(store: Store, table) -> int:
    """sum(n) of a rollup table once refreshed (on plain PostgreSQL writes only mark hours)."""
    store.refresh_rollups()
    with store.engine.connect() as conn:
        return conn.execute(select(func.coalesce(func.sum(table.c.n), 0))).scalar_one()


def test_upgrade_is_idempotent_and_reports_the_backend(store: Store) -> None:
    first = store.meta()
    assert first["rollups"] in {"tables", "timescale"}
    assert first["daily_timezone"] == "Asia/Ho_Chi_Minh"
    assert store.upgrade() == first


def test_storing_a_reading_twice_is_a_no_op(filled: tuple[Store, list[Reading]]) -> None:
    store, data = filled
    assert store.write_readings(data) == 0
    assert store.write_readings(data[:5] + data[:5]) == 0
    assert count(store, readings) == len(data)
    assert rollup_total(store, readings_hourly) == len(data)
    assert rollup_total(store, readings_daily) == len(data)


def test_duplicates_within_one_batch_are_stored_once(store: Store) -> None:
    store.upsert_stations(STATIONS)
    batch = minute_series("QN001", 10)
    assert store.write_readings(batch + batch[::-1]) == 10
    assert count(store, readings) == 10
    assert rollup_total(store, readings_hourly) == 10


def test_add_readings_returns_exactly_what_it_stored(store: Store) -> None:
    """The detectors judge what this returns: of repeats in one batch the first (the one
    stored), and nothing already stored, on the direct path and through the staging table."""
    store.upsert_stations(STATIONS)
    first = minute_series("QN001", 4)
    louder = [r.model_copy(update={"dose_rate_nsv_h": 2e9}) for r in first]
    added = store.add_readings(first[:2] + louder[:2])
    assert added == first[:2]
    added = store.add_readings(louder[1:3] + first[2:])
    assert added == [louder[2], first[3]]
    stored = store.series("QN001", T0, T0 + timedelta(hours=1), Resolution.RAW)
    assert [p.mean_nsv_h for p in stored] == [
        r.dose_rate_nsv_h for r in [*first[:2], louder[2], first[3]]
    ]
    assert store.add_readings(first + louder) == []


def test_a_batch_partly_stored_already_keeps_only_the_new_ones(store: Store) -> None:
    """A redelivery that overlaps new readings (the ingest's rows, not models): the first
    attempt meets a stored key and is rolled back whole, the second keeps only the new."""
    store.upsert_stations(STATIONS)
    data = [reading_row(r) for r in minute_series("QN001", 120)]
    assert store.write_readings(data[:70]) == 70
    assert store.write_readings(data[40:]) == 50
    assert store.write_readings(data[100:] + data[:10]) == 0
    assert count(store, readings) == 120
    assert rollup_total(store, readings_hourly) == 120
    assert rollup_total(store, readings_daily) == 120
    stored = store.series("QN001", T0, T0 + timedelta(hours=2), Resolution.RAW)
    assert [p.mean_nsv_h for p in stored] == [r.dose_rate_nsv_h for r in data]


def test_out_of_order_and_late_readings_keep_rollups_exact(store: Store) -> None:
    store.upsert_stations(STATIONS)
    data = minute_series("QN001", 240)
    shuffled = data[:]
    random.Random(7).shuffle(shuffled)
    for i in range(0, len(shuffled), 37):
        store.write_readings(shuffled[i : i + 37])
    points = store.series("QN001", T0, T0 + timedelta(hours=4), Resolution.HOUR)
    for point in points:
        inside = [
            r.dose_rate_nsv_h
            for r in data
            if point.time <= r.time < point.time + timedelta(hours=1)
        ]
        assert point.count == len(inside)
        assert point.mean_nsv_h == pytest.approx(sum(inside) / len(inside))
        assert point.min_nsv_h == min(inside)
        assert point.max_nsv_h == max(inside)


def test_latest_reading_per_station(filled: tuple[Store, list[Reading]]) -> None:
    store, data = filled
    latest = {item.station.station_id: item for item in store.latest()}
    assert set(latest) == {"QN001", "QN002", "QN003"}
    newest = max((r for r in data if r.station_id == "QN001"), key=lambda r: r.time)
    assert latest["QN001"].time == newest.time
    assert latest["QN001"].dose_rate_nsv_h == newest.dose_rate_nsv_h
    assert latest["QN003"].time is None and latest["QN003"].dose_rate_nsv_h is None
    assert latest["QN001"].station.name == "Hạ Long 1"


def test_latest_carries_the_highest_open_alarm_severity(
    filled: tuple[Store, list[Reading]],
) -> None:
    store, _ = filled
    rows = [
        ("QN001", Severity.WARNING, AlarmState.ACTIVE_UNACK),
        ("QN001", Severity.ALERT, AlarmState.ACTIVE_ACK),
        ("QN001", Severity.EMERGENCY, AlarmState.CLEARED_ACK),  # closed: does not count
        ("QN002", Severity.EMERGENCY, AlarmState.CLEARED_UNACK),
    ]
    with store.engine.begin() as conn:
        # (station_id, kind, opened_at) identifies an episode: one opening time per row
        for i, (station_id, severity, state) in enumerate(rows):
            conn.execute(
                alarms.insert().values(
                    station_id=station_id,
                    kind="step",
                    category="radiological",
                    severity=severity.value,
                    state=state.value,
                    opened_at=T0 + timedelta(minutes=i),
                    details={},
                )
            )
    latest = {item.station.station_id: item.severity for item in store.latest()}
    assert latest == {"QN001": Severity.ALERT, "QN002": None, "QN003": None}


def test_raw_series_and_readings(filled: tuple[Store, list[Reading]]) -> None:
    store, data = filled
    start, end = T0 + timedelta(minutes=10), T0 + timedelta(minutes=70)
    expected = [r for r in data if r.station_id == "QN001" and start <= r.time < end]
    raw = store.series("QN001", start, end, Resolution.RAW)
    assert [p.time for p in raw] == [r.time for r in expected]
    assert [p.mean_nsv_h for p in raw] == [r.dose_rate_nsv_h for r in expected]
    full = store.readings("QN001", start, end)
    assert [r.precip_mm_h for r in full] == [r.precip_mm_h for r in expected]
    assert all(r.time.tzinfo is not None for r in full)


def test_daily_buckets_are_local_days(filled: tuple[Store, list[Reading]]) -> None:
    store, data = filled
    days = store.series("QN001", T0 - timedelta(days=1), T0 + timedelta(days=1), Resolution.DAY)
    # 16:30 UTC is 23:30 in UTC+7: the first 30 minutes belong to the local day that began
    # at 17:00 UTC the day before; the rest to the next local day.
    assert [p.time for p in days] == [
        datetime(2026, 11, 19, 17, tzinfo=UTC),
        datetime(2026, 11, 20, 17, tzinfo=UTC),
    ]
    assert [p.count for p in days] == [30, 150]
    first = [r.dose_rate_nsv_h for r in data if r.station_id == "QN001"][:30]
    assert days[0].mean_nsv_h == pytest.approx(sum(first) / 30)


def test_a_local_day_of_25_hours_is_found_from_its_last_hour(store: Store) -> None:
    """Asia/Ho_Chi_Minh's 12 June 1975 lasted 25 h (the clock went back to UTC+7): a period
    in its 25th hour found no day, because days were looked for only 24 h back."""
    store.upsert_stations(STATIONS)
    day = datetime(1975, 6, 11, 16, tzinfo=UTC)  # local midnight, UTC+8 then
    late = Reading(
        station_id="QN001", time=day + timedelta(hours=24, minutes=30), dose_rate_nsv_h=100.0
    )
    store.write_readings([late])
    start = day + timedelta(hours=24, minutes=15)
    for refreshed in (False, True):
        if refreshed:
            store.refresh_rollups()
        days = store.series("QN001", start, start + timedelta(minutes=30), Resolution.DAY)
        assert [(p.time, p.count) for p in days] == [(day, 1)]
    assert (
        store.series("QN001", day + timedelta(hours=25), day + timedelta(hours=26), Resolution.DAY)
        == []
    )


def test_changing_the_office_zone_rebuilds_daily_buckets(
    filled: tuple[Store, list[Reading]],
) -> None:
    store, _ = filled
    utc_settings = load_settings(
        database={"url": store.settings.database.url}, site={"timezone": "UTC"}
    )
    moved = Store(store.engine, utc_settings)
    assert moved.upgrade()["daily_timezone"] == "UTC"
    days = moved.series("QN001", T0 - timedelta(days=1), T0 + timedelta(days=1), Resolution.DAY)
    assert [p.time for p in days] == [datetime(2026, 11, 20, tzinfo=UTC)]
    assert days[0].count == 180
    assert rollup_total(moved, readings_daily) == 300


def test_stats_with_availability(filled: tuple[Store, list[Reading]]) -> None:
    store, data = filled
    stats = {s.station_id: s for s in store.stats(T0, T0 + timedelta(hours=3))}
    qn1 = [r.dose_rate_nsv_h for r in data if r.station_id == "QN001"]
    assert stats["QN001"].count == 180
    assert stats["QN001"].availability_pct == 100.0
    assert stats["QN001"].mean_nsv_h == pytest.approx(sum(qn1) / len(qn1))
    assert stats["QN002"].count == 120
    assert stats["QN002"].availability_pct == pytest.approx(100 * 120 / 180, abs=0.01)
    assert stats["QN003"].count == 0 and stats["QN003"].mean_nsv_h is None
    assert stats["QN003"].availability_pct == 0.0
    only = store.stats(T0, T0 + timedelta(hours=3), ["QN002"])
    assert [s.station_id for s in only] == ["QN002"]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(start_min=st.integers(-30, 200), length_min=st.integers(0, 300), aligned=st.booleans())
def test_stats_equal_a_direct_computation_for_any_period(
    filled: tuple[Store, list[Reading]], start_min: int, length_min: int, aligned: bool
) -> None:
    store, data = filled
    start = T0 + timedelta(minutes=start_min, seconds=17)
    end = start + timedelta(minutes=length_min)
    if aligned:  # whole hours only: answered from the rollup alone
        start = start.replace(minute=0, second=0)
        end = start + timedelta(hours=length_min // 60)
    got = {s.station_id: s for s in store.stats(start, end)}
    for station_id in ("QN001", "QN002"):
        inside = [
            r.dose_rate_nsv_h for r in data if r.station_id == station_id and start <= r.time < end
        ]
        assert got[station_id].count == len(inside)
        if inside:
            assert got[station_id].mean_nsv_h == pytest.approx(sum(inside) / len(inside))
            assert got[station_id].min_nsv_h == min(inside)
            assert got[station_id].max_nsv_h == max(inside)


def test_station_upsert_updates_in_place(store: Store) -> None:
    store.upsert_stations(STATIONS)
    renamed = STATIONS[0].model_copy(update={"name": "Hạ Long (moved)", "lat": 20.96})
    store.upsert_stations([renamed])
    assert store.station("QN001") == renamed
    assert len(store.stations()) == 3
    assert store.station("nope") is None


def test_a_failing_batch_leaves_nothing_behind(filled: tuple[Store, list[Reading]]) -> None:
    store, data = filled
    good = minute_series("QN002", 5, start=T0 + timedelta(days=2))
    broken = Reading.model_construct(
        station_id="QN002", time=T0 + timedelta(days=2, hours=1), dose_rate_nsv_h=None
    )
    with pytest.raises(Exception):  # noqa: B017 - NOT NULL violation, the driver's own type
        store.write_readings([*good, broken])
    assert count(store, readings) == len(data)
    assert rollup_total(store, readings_hourly) == len(data)
    assert store.write_readings(good) == 5  # and the store still works afterwards


def test_concurrent_writers_neither_lose_nor_duplicate(store: Store) -> None:
    store.upsert_stations(STATIONS)
    data = minute_series("QN001", 600) + minute_series("QN002", 600, seed=3)
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        mine = data[:]
        random.Random(seed).shuffle(mine)
        try:
            for i in range(0, len(mine), 150):
                store.write_readings(mine[i : i + 150])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert count(store, readings) == len(data)
    assert rollup_total(store, readings_hourly) == len(data)
    assert rollup_total(store, readings_daily) == len(data)


def test_store_refuses_a_database_without_schema(backend_settings) -> None:
    fresh = Store.open(backend_settings)
    try:
        with pytest.raises(SchemaNotReady, match="radmon db upgrade"):
            fresh.write_readings(minute_series("QN001", 1))
    finally:
        fresh.close()


def test_ping(store: Store) -> None:
    assert store.ping()
    down = Store.open(load_settings(database={"url": "postgresql://nobody@127.0.0.1:1/none"}))
    assert not down.ping()


@pytest.mark.postgres
def test_postgres_layout_without_timescaledb(pg_url: str) -> None:
    store = Store.open(load_settings(database={"url": pg_url}))
    store.upgrade()
    try:
        if store.timescale:
            pytest.skip("TimescaleDB is installed here: the plain-PostgreSQL layout does not apply")
        with store.engine.connect() as conn:
            indexes = dict(
                conn.execute(
                    text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'readings'")
                ).all()
            )
        definitions = " ".join(d.lower().replace('"', "") for d in indexes.values())
        assert "using brin (time)" in definitions
        assert "(station_id, time)" in definitions
    finally:
        store.close()


@pytest.mark.postgres
def test_timescaledb_hypertable_aggregates_and_policies(pg_url: str) -> None:
    """On TimescaleDB: the hypertable, both aggregates, and the chunk size, compression and
    retention that ``store.*`` asks for; a later upgrade with the policies off removes them.

    View and column names are TimescaleDB 2.x's informational views (timescaledb_information.
    hypertables, dimensions, continuous_aggregates, jobs, compression_settings); a policy's job
    is found by its ``proc_name`` (policy_compression, policy_retention,
    policy_refresh_continuous_aggregate), whose ``config`` holds compress_after or drop_after.
    """
    policies = {"chunk_interval_days": 3, "compress_after_days": 10, "retention_days": 400}
    store = Store.open(load_settings(database={"url": pg_url}, store=policies))
    try:
        with store.engine.connect() as conn:
            has = conn.execute(
                text("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
            ).scalar_one()
        if not has:
            pytest.skip("TimescaleDB is not installed on this PostgreSQL server")
        store.upgrade()
        assert store.timescale
        with store.engine.connect() as conn:
            hyper = conn.execute(
                text(
                    "SELECT compression_enabled FROM timescaledb_information.hypertables "
                    "WHERE hypertable_name = 'readings'"
                )
            ).all()
            chunk_days = conn.execute(
                text(
                    "SELECT time_interval = make_interval(days => 3) "
                    "FROM timescaledb_information.dimensions "
                    "WHERE hypertable_name = 'readings' AND column_name = 'time'"
                )
            ).scalar_one()
            caggs = (
                conn.execute(
                    text("SELECT view_name FROM timescaledb_information.continuous_aggregates")
                )
                .scalars()
                .all()
            )
            refreshed = (
                conn.execute(
                    text(
                        "SELECT c.view_name FROM timescaledb_information.jobs j "
                        "JOIN timescaledb_information.continuous_aggregates c "
                        "ON c.materialization_hypertable_schema = j.hypertable_schema "
                        "AND c.materialization_hypertable_name = j.hypertable_name "
                        "WHERE j.proc_name = 'policy_refresh_continuous_aggregate'"
                    )
                )
                .scalars()
                .all()
            )
            segment_order = conn.execute(
                text(
                    "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc "
                    "FROM timescaledb_information.compression_settings "
                    "WHERE hypertable_name = 'readings' "
                    "AND (segmentby_column_index IS NOT NULL OR orderby_column_index IS NOT NULL) "
                    "ORDER BY attname"
                )
            ).all()
            jobs = _policy_jobs(conn)
        assert hyper == [(True,)], "readings is one hypertable, with compression enabled"
        assert chunk_days is True, "chunks of store.chunk_interval_days"
        assert set(caggs) == {"readings_hourly", "readings_daily"}
        assert sorted(refreshed) == ["readings_daily", "readings_hourly"]
        assert [tuple(row) for row in segment_order] == [
            ("station_id", 1, None, None),
            ("time", None, 1, False),  # time DESC
        ]
        assert jobs == {
            "policy_compression": [("compress_after", True)],  # 10 days
            "policy_retention": [("drop_after", True)],  # 400 days
        }
    finally:
        store.close()

    # The same database, upgraded again with both policies turned off: their jobs are gone.
    off = {"compress_after_days": None, "retention_days": None}
    again = Store.open(load_settings(database={"url": pg_url}, store=off))
    try:
        again.upgrade()
        with again.engine.connect() as conn:
            assert _policy_jobs(conn) == {}
    finally:
        again.close()


def _policy_jobs(conn) -> dict[str, list[tuple[str, bool]]]:
    """The compression and retention jobs on ``readings``: proc_name → [(config key, whether
    its interval equals the one set above)]."""
    rows = conn.execute(
        text(
            "SELECT proc_name, "
            "CASE proc_name WHEN 'policy_compression' THEN 'compress_after' "
            "ELSE 'drop_after' END AS key, "
            "CASE proc_name "
            "WHEN 'policy_compression' THEN "
            "(config->>'compress_after')::interval = make_interval(days => 10) "
            "ELSE (config->>'drop_after')::interval = make_interval(days => 400) END AS matches "
            "FROM timescaledb_information.jobs "
            "WHERE hypertable_name = 'readings' "
            "AND proc_name IN ('policy_compression', 'policy_retention') "
            "ORDER BY proc_name"
        )
    ).all()
    found: dict[str, list[tuple[str, bool]]] = {}
    for proc, key, matches in rows:
        found.setdefault(proc, []).append((key, matches))
    return found


def test_an_update_keeps_the_fields_it_was_not_given(store: Store) -> None:
    # A stations file of the required columns alone once wiped calibration and time zone.
    full = Station(
        station_id="QN9",
        name="Old",
        lat=21.0,
        lon=107.0,
        timezone="Asia/Ho_Chi_Minh",
        probe_model="GM",
        sensitivity_cps_per_usv_h=8.5,
        has_rain_gauge=True,
    )
    store.upsert_stations([full])
    store.upsert_stations([Station(station_id="QN9", name="New", lat=21.5, lon=107.5)])
    kept = store.station("QN9")
    assert (kept.name, kept.lat, kept.lon) == ("New", 21.5, 107.5)
    assert kept.timezone == "Asia/Ho_Chi_Minh" and kept.probe_model == "GM"
    assert kept.sensitivity_cps_per_usv_h == 8.5 and kept.has_rain_gauge
    store.upsert_stations([kept.model_copy(update={"probe_model": None})])
    assert store.station("QN9").probe_model is None  # a field given as empty is cleared


@pytest.mark.postgres
def test_upgrades_at_once_take_turns(pg_url: str) -> None:
    # Several nodes starting together each ran the migrations; all but one failed half-way
    # with a duplicate-type error.
    settings = load_settings(database={"url": pg_url})
    stores = [Store.open(settings) for _ in range(4)]
    outcomes: list[object] = []

    def upgrade(store: Store) -> None:
        try:
            outcomes.append(store.upgrade()["rollups"])
        except Exception as exc:  # the test reports whatever went wrong
            outcomes.append(exc)

    threads = [threading.Thread(target=upgrade, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for store in stores:
        store.close()
    assert len(set(map(str, outcomes))) == 1 and not isinstance(outcomes[0], Exception), outcomes


@pytest.mark.postgres
def test_requiring_timescaledb_where_it_is_not_is_refused(pg_url: str) -> None:
    from radmon.errors import InputError
    from radmon.store import timescale

    plain = Store.open(load_settings(database={"url": pg_url}, store={"timescaledb": False}))
    try:
        plain.upgrade()
        with plain.engine.connect() as conn:
            has_it = timescale.available(conn)
    finally:
        plain.close()
    required = Store.open(load_settings(database={"url": pg_url}, store={"timescaledb": True}))
    try:
        # the plain store said "schema is current" and went on without it
        with pytest.raises(InputError, match=r"store\.timescaledb is true"):
            required.upgrade()
    finally:
        required.close()
    if not has_it:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        fresh = Store.open(load_settings(database={"url": pg_url}, store={"timescaledb": True}))
        try:
            with pytest.raises(InputError, match="no timescaledb extension"):
                fresh.upgrade()
        finally:
            fresh.close()
