"""Alarm episodes, the detection engine's state and the warm-up read, on both backends."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select

from radmon.config import Settings
from radmon.errors import RadmonError
from radmon.models import Alarm, AlarmState, Category, Reading, Severity, Station
from radmon.store import Store, migrate
from radmon.store.schema import alarms
from tests.radmon.older_schema import upgrade_to

T0 = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
MIN = timedelta(minutes=1)


def episode(
    station_id: str = "QN001",
    kind: str = "step",
    opened: int = 0,
    at: int = 0,
    severity: Severity = Severity.WARNING,
    peak: float | None = 150.0,
    baseline: float | None = 80.0,
    cleared: int | None = None,
    **more: object,
) -> Alarm:
    """An engine report on the episode opened at T0 + *opened* minutes, made at *at* minutes."""
    return Alarm(
        station_id=station_id,
        kind=kind,
        category=Category.TECHNICAL if kind == "offline" else Category.RADIOLOGICAL,
        severity=severity,
        state=AlarmState.ACTIVE_UNACK if cleared is None else AlarmState.CLEARED_UNACK,
        opened_at=T0 + opened * MIN,
        updated_at=T0 + at * MIN,
        cleared_at=None if cleared is None else T0 + cleared * MIN,
        peak_nsv_h=peak,
        baseline_nsv_h=baseline,
        details={"report_at": at},
        **more,
    )


def table_rows(store: Store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(alarms).order_by(alarms.c.id)).mappings()]


def only(store: Store) -> Alarm:
    [alarm] = store.alarms("all")
    return alarm


# -- record_alarms ------------------------------------------------------------------------------

ENGINE_RUN = [
    episode(at=0, severity=Severity.WARNING, peak=150.0),
    episode("QN002", "offline", opened=3, at=3, severity=Severity.INFO, peak=None),
    episode(at=5, severity=Severity.ALERT, peak=420.0),
    episode(at=9, severity=Severity.WARNING, peak=300.0, baseline=82.0),
    episode(at=12, severity=Severity.WARNING, peak=90.0, baseline=None, cleared=12),
    episode(opened=30, at=30, severity=Severity.EMERGENCY, peak=5000.0),
    episode("QN002", "offline", opened=3, at=40, severity=Severity.INFO, peak=None, cleared=40),
]


def test_replaying_a_sequence_leaves_the_table_identical(store: Store) -> None:
    first = store.record_alarms(ENGINE_RUN)
    after_first = table_rows(store)
    assert len(after_first) == 3  # three episodes, however many reports
    again = store.record_alarms(ENGINE_RUN)
    assert table_rows(store) == after_first
    assert again == first
    # one answer per item, in the items' order, each the episode as finally stored
    assert [a.id for a in first] == [first[0].id, first[1].id] + [first[0].id] * 3 + [
        first[5].id,
        first[1].id,
    ]
    assert len({first[0].id, first[1].id, first[5].id}) == 3
    step = first[0]
    assert step.severity is Severity.ALERT
    assert step.peak_nsv_h == 420.0
    assert step.baseline_nsv_h == 82.0
    assert step.state is AlarmState.CLEARED_UNACK
    assert step.cleared_at == T0 + 12 * MIN
    assert step.updated_at == T0 + 12 * MIN
    assert step.details == {"report_at": 12}
    assert first[5].state is AlarmState.ACTIVE_UNACK
    assert first[1].state is AlarmState.CLEARED_UNACK
    # replaying one report at a time, as the engine does after a restart, changes nothing either
    for report in ENGINE_RUN:
        store.record_alarms([report])
    assert table_rows(store) == after_first


def test_recording_nothing_writes_nothing(store: Store) -> None:
    assert store.record_alarms([]) == []
    assert table_rows(store) == []


def test_severity_never_lowers_and_peaks_and_times_only_grow(store: Store) -> None:
    [opened] = store.record_alarms([episode(at=10, severity=Severity.ALERT, peak=400.0)])
    assert opened.id is not None and opened.state is AlarmState.ACTIVE_UNACK
    [lower] = store.record_alarms(
        [episode(at=5, severity=Severity.WARNING, peak=120.0, baseline=81.0)]
    )
    assert lower.id == opened.id
    assert lower.severity is Severity.ALERT
    assert lower.peak_nsv_h == 400.0
    assert lower.updated_at == T0 + 10 * MIN  # an older report does not move it back
    assert lower.baseline_nsv_h == 81.0  # baseline and details follow the latest report
    assert lower.details == {"report_at": 5}
    vague = episode(peak=None, baseline=None).model_copy(update={"updated_at": None})
    [unknown] = store.record_alarms([vague])
    assert unknown.peak_nsv_h == 400.0
    assert unknown.baseline_nsv_h == 81.0  # a report without a baseline keeps the stored one
    assert unknown.updated_at == T0 + 10 * MIN
    [higher] = store.record_alarms([episode(at=20, severity=Severity.EMERGENCY, peak=900.0)])
    assert (higher.severity, higher.peak_nsv_h) == (Severity.EMERGENCY, 900.0)
    assert higher.updated_at == T0 + 20 * MIN
    assert only(store) == higher


def test_clearing_keeps_the_acknowledgement(store: Store) -> None:
    acked, _ = store.record_alarms([episode("QN001"), episode("QN002", severity=Severity.ALERT)])
    store.acknowledge_alarm(acked.id, "duty officer", T0 + 2 * MIN)
    cleared = store.record_alarms(
        [episode("QN001", at=7, cleared=7), episode("QN002", at=8, cleared=8)]
    )
    assert cleared[0].state is AlarmState.CLEARED_ACK
    assert (cleared[0].acked_by, cleared[0].acked_at) == ("duty officer", T0 + 2 * MIN)
    assert cleared[0].cleared_at == T0 + 7 * MIN
    assert cleared[1].state is AlarmState.CLEARED_UNACK
    assert cleared[1].acked_by is None and cleared[1].acked_at is None
    assert cleared[1].severity is Severity.ALERT  # the clearing report's lower one is ignored
    assert store.alarms("open") == []


def test_a_cleared_episode_is_never_reopened(store: Store) -> None:
    store.record_alarms([episode(at=0), episode(at=4, cleared=4)])
    [late] = store.record_alarms(
        [
            episode(
                at=9,
                severity=Severity.ALERT,
                peak=700.0,
                acked_by="engine",
                acked_at=T0 + 9 * MIN,
            )
        ]
    )
    assert late.state is AlarmState.CLEARED_UNACK
    assert late.cleared_at == T0 + 4 * MIN
    assert late.acked_by is None and late.acked_at is None  # never written by the engine
    assert (late.severity, late.peak_nsv_h) == (Severity.ALERT, 700.0)  # the facts still merge
    # the same station and kind opening again later is a new episode
    [reopened] = store.record_alarms([episode(opened=10, at=10)])
    assert reopened.id != late.id and reopened.state is AlarmState.ACTIVE_UNACK
    assert [a.id for a in store.alarms("open")] == [reopened.id]


def test_an_episode_first_seen_cleared_is_stored_cleared(store: Store) -> None:
    [short] = store.record_alarms([episode(at=3, cleared=3)])
    assert short.state is AlarmState.CLEARED_UNACK
    assert short.cleared_at == T0 + 3 * MIN
    assert store.alarms("open") == []


def test_concurrent_writers_of_the_same_episodes_store_each_once(store: Store) -> None:
    reports = [
        episode(f"QN{n:03d}", opened=0, at=minute, severity=Severity.WARNING, peak=100.0 + minute)
        for minute in range(3)
        for n in range(20)
    ]
    errors: list[BaseException] = []

    def write(items: list[Alarm]) -> None:
        try:
            for _ in range(3):
                store.record_alarms(items)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    # the same episodes in opposite orders: no duplicate, no deadlock
    threads = [
        threading.Thread(target=write, args=(reports,)),
        threading.Thread(target=write, args=(reports[::-1],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = store.alarms("all")
    assert len(stored) == 20
    assert {a.peak_nsv_h for a in stored} == {102.0}


# -- acknowledge_alarm --------------------------------------------------------------------------


def test_acknowledging_twice_keeps_the_first(store: Store) -> None:
    [active] = store.record_alarms([episode()])
    first = store.acknowledge_alarm(active.id, "Nguyễn Văn A", T0 + 3 * MIN)
    assert first is not None
    assert first.state is AlarmState.ACTIVE_ACK
    assert (first.acked_by, first.acked_at) == ("Nguyễn Văn A", T0 + 3 * MIN)
    second = store.acknowledge_alarm(active.id, "someone else", T0 + 9 * MIN)
    assert second == first
    assert only(store) == first
    assert [a.id for a in store.alarms("open")] == [active.id]  # acknowledged is still open


def test_a_rise_in_severity_after_an_acknowledgement_is_news_again(store: Store) -> None:
    # The officer acknowledged a warning: the emergency it became paged nobody.
    [warning] = store.record_alarms([episode(severity=Severity.WARNING)])
    store.acknowledge_alarm(warning.id, "duty officer", T0 + 2 * MIN)
    [same] = store.record_alarms([episode(at=5, severity=Severity.WARNING, peak=450.0)])
    assert same.state is AlarmState.ACTIVE_ACK  # a higher peak at the same severity is not
    [worse] = store.record_alarms([episode(at=6, severity=Severity.EMERGENCY, peak=5000.0)])
    assert worse.state is AlarmState.ACTIVE_UNACK
    again = store.acknowledge_alarm(worse.id, "incident commander", T0 + 8 * MIN)
    assert again.state is AlarmState.ACTIVE_ACK
    assert (again.acked_by, again.acked_at) == ("incident commander", T0 + 8 * MIN)


def test_acknowledging_a_cleared_alarm(store: Store) -> None:
    [cleared] = store.record_alarms([episode(at=2, cleared=2)])
    acked = store.acknowledge_alarm(cleared.id, "on-call", datetime(2026, 11, 21, 8, tzinfo=UTC))
    assert acked is not None
    assert acked.state is AlarmState.CLEARED_ACK
    assert acked.acked_at == datetime(2026, 11, 21, 8, tzinfo=UTC)
    assert acked.cleared_at == T0 + 2 * MIN


def test_acknowledging_no_such_alarm(store: Store) -> None:
    assert store.acknowledge_alarm(12345, "x", T0) is None
    assert table_rows(store) == []


# -- alarms() -----------------------------------------------------------------------------------


def test_listing_filters_and_orders_newest_opened_first(store: Store) -> None:
    recorded = store.record_alarms(
        [
            episode("QN001", opened=0, at=0),
            episode("QN001", opened=0, at=5, cleared=5),
            episode("QN002", "offline", opened=10, at=10, severity=Severity.INFO),
            episode("QN001", opened=20, at=20, severity=Severity.ALERT),
            episode("QN003", opened=30, at=30),
        ]
    )
    old, _, offline, fresh, other = recorded
    store.acknowledge_alarm(fresh.id, "officer", T0 + 21 * MIN)
    assert [a.id for a in store.alarms()] == [other.id, fresh.id, offline.id]
    assert [a.id for a in store.alarms("all")] == [other.id, fresh.id, offline.id, old.id]
    assert [a.id for a in store.alarms("all", station_id="QN001")] == [fresh.id, old.id]
    assert [a.id for a in store.alarms("open", station_id="QN001")] == [fresh.id]
    assert [a.id for a in store.alarms("all", since=T0 + 10 * MIN)] == [
        other.id,
        fresh.id,
        offline.id,
    ]
    assert [a.id for a in store.alarms("all", limit=2)] == [other.id, fresh.id]
    assert store.alarms(station_id="nowhere") == []
    listed = {a.id: a for a in store.alarms("all")}
    assert listed[fresh.id].state is AlarmState.ACTIVE_ACK
    assert listed[offline.id].category is Category.TECHNICAL
    assert listed[old.id].opened_at.tzinfo is not None


def test_listing_refuses_an_unknown_state_or_limit(store: Store) -> None:
    with pytest.raises(ValueError, match="state='closed'"):
        store.alarms("closed")
    with pytest.raises(ValueError, match="limit"):
        store.alarms(limit=0)


def test_latest_carries_the_severity_of_recorded_open_episodes(store: Store) -> None:
    store.upsert_stations(
        [
            Station(station_id="QN001", name="Hạ Long 1", lat=20.95, lon=107.08),
            Station(station_id="QN002", name="Móng Cái", lat=21.52, lon=107.97),
        ]
    )
    store.record_alarms(
        [
            episode("QN001", "step", severity=Severity.WARNING),
            episode("QN001", "threshold", severity=Severity.ALERT),
            episode("QN002", "step", severity=Severity.EMERGENCY),
            episode("QN002", "step", at=3, cleared=3),
        ]
    )
    latest = {item.station.station_id: item.severity for item in store.latest()}
    assert latest == {"QN001": Severity.ALERT, "QN002": None}


# -- detector state -----------------------------------------------------------------------------


def test_detector_state_round_trip(store: Store) -> None:
    assert store.load_detector_state("streaming") is None
    payload = bytes(range(256)) * 4096  # every byte value, 1 MiB
    store.save_detector_state("streaming", payload, T0)
    assert store.load_detector_state("streaming") == (T0, payload)
    store.save_detector_state("streaming", b"\x00newer", T0 + MIN)
    store.save_detector_state("baseline", b"", T0 + 2 * MIN)
    assert store.load_detector_state("streaming") == (T0 + MIN, b"\x00newer")
    assert store.load_detector_state("baseline") == (T0 + 2 * MIN, b"")


# -- iter_readings ------------------------------------------------------------------------------


def _history() -> list[Reading]:
    """Five stations reporting at the same instants, a three-day gap, and one mobile reading."""
    readings = []
    for minute in range(40):
        for n in (3, 1, 5, 2, 4):  # written out of key order on purpose
            readings.append(
                Reading(
                    station_id=f"QN00{n}",
                    time=T0 + minute * MIN,
                    dose_rate_nsv_h=80.0 + minute + n / 10,
                    precip_mm_h=None if minute % 3 else 2.5 * n,
                    counts=minute * 10 + n,
                )
            )
    later = T0 + timedelta(days=3)
    readings += [
        Reading(station_id="QN002", time=later, dose_rate_nsv_h=95.0, precip_mm_h=0.0),
        Reading(
            station_id="BG-77",
            time=later + timedelta(seconds=1, microseconds=250),
            dose_rate_nsv_h=130.5,
            uncertainty_nsv_h=6.5,
            interval_s=5.0,
            battery_v=3.7,
            temperature_c=31.5,
            status=2,
            lat=21.01,
            lon=107.2,
            altitude_m=12.0,
        ),
    ]
    return readings


def _key(r: Reading) -> tuple[datetime, str]:
    return (r.time, r.station_id)


@pytest.mark.parametrize("chunk", [1, 7, 10, 50_000])
def test_iter_readings_returns_every_reading_in_order_in_chunks(store: Store, chunk: int) -> None:
    history = _history()
    store.write_readings(history)
    expected = sorted(history, key=_key)
    chunks = list(store.iter_readings(T0 - MIN, T0 + timedelta(days=4), chunk=chunk))
    assert all(len(c) == chunk for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= chunk
    got = [r for c in chunks for r in c]
    assert [_key(r) for r in got] == [_key(r) for r in expected]
    assert [r.model_dump() for r in got] == [r.model_dump() for r in expected]
    assert all(r.time.tzinfo is not None for r in got)


def test_iter_readings_bounds_are_exclusive_then_inclusive(store: Store) -> None:
    history = _history()
    store.write_readings(history)
    start, end = T0 + 5 * MIN, T0 + 9 * MIN
    got = [r for c in store.iter_readings(start, end, chunk=3) for r in c]
    # 5 stations at minutes 6, 7, 8 and 9: not minute 5, but minute 9
    assert [_key(r) for r in got] == sorted(_key(r) for r in history if start < r.time <= end)
    assert len(got) == 20
    assert got[0].time == T0 + 6 * MIN and got[-1].time == end
    assert got[0].station_id == "QN001" and got[-1].station_id == "QN005"


def test_iter_readings_of_an_empty_period(store: Store) -> None:
    store.write_readings(_history())
    assert list(store.iter_readings(T0 + 50 * MIN, T0 + timedelta(days=2))) == []
    assert list(store.iter_readings(T0 + 9 * MIN, T0 + 9 * MIN)) == []
    with pytest.raises(ValueError, match="chunk"):
        next(store.iter_readings(T0, T0 + MIN, chunk=0))


def test_iter_readings_across_dense_and_sparse_stretches(store: Store) -> None:
    # 300 stations at one instant (narrower than any window), then hourly readings for weeks
    burst = [Reading(station_id=f"S{n:03d}", time=T0, dose_rate_nsv_h=float(n)) for n in range(300)]
    sparse = [
        Reading(station_id="S000", time=T0 + timedelta(hours=h), dose_rate_nsv_h=1.0)
        for h in range(1, 24 * 40, 7)
    ]
    store.write_readings(burst + sparse)
    chunks = list(store.iter_readings(T0 - MIN, T0 + timedelta(days=60), chunk=64))
    got = [_key(r) for c in chunks for r in c]
    assert got == sorted(_key(r) for r in burst + sparse)
    assert [len(c) for c in chunks[:-1]] == [64] * (len(chunks) - 1)


def test_iter_readings_agrees_with_a_plain_sort_on_random_history(store: Store) -> None:
    rng = random.Random(4)
    instants = sorted(
        {T0 + timedelta(seconds=rng.choice([1, 30, 600, 7200, 86400 * 5]) * i) for i in range(60)}
    )
    history = [
        Reading(station_id=f"R{n:02d}", time=moment, dose_rate_nsv_h=rng.uniform(50, 150))
        for moment in instants
        for n in rng.sample(range(12), rng.randint(1, 12))
    ]
    store.write_readings(history)
    keys = sorted(_key(r) for r in history)
    for _ in range(25):
        start, end = sorted(rng.sample(instants, 2))
        start += rng.choice([-MIN, timedelta(0), timedelta(microseconds=1)])
        chunk = rng.choice([1, 2, 5, 11, 64, 1000])
        chunks = list(store.iter_readings(start, end, chunk=chunk))
        assert [_key(r) for c in chunks for r in c] == [k for k in keys if start < k[0] <= end]
        assert all(len(c) == chunk for c in chunks[:-1])


# -- migration 0004 -----------------------------------------------------------------------------


def test_upgrading_again_changes_nothing(store: Store) -> None:
    [kept] = store.record_alarms([episode()])
    store.save_detector_state("streaming", b"state", T0)
    meta = store.meta()
    assert store.upgrade() == meta
    assert store.upgrade() == meta
    assert migrate.current_revision(store.engine) == migrate.head_revision() == "0007"
    assert store.alarms("all") == [kept]
    assert store.load_detector_state("streaming") == (T0, b"state")
    found = inspect(store.engine)
    assert {"name", "saved_at", "payload"} <= {
        c["name"] for c in found.get_columns("detector_state")
    }
    unique = [ix for ix in found.get_indexes("alarms") if ix["name"] == "ux_alarms_episode"]
    assert [(ix["column_names"], bool(ix["unique"])) for ix in unique] == [
        (["station_id", "kind", "opened_at"], True)
    ]


def _hand_written_alarm(opened_at: datetime, state: str = "active_ack") -> dict:
    return {
        "station_id": "QN001",
        "kind": "threshold",
        "category": "radiological",
        "severity": "alert",
        "state": state,
        "opened_at": opened_at,
        "acked_by": "officer",
        "acked_at": opened_at + MIN,
        "details": {"note": "before 0004"},
    }


def test_upgrading_from_0003_keeps_existing_alarms(backend_settings: Settings) -> None:
    store = Store.open(backend_settings)
    try:
        upgrade_to(store.engine, "0003")
        with store.engine.begin() as conn:
            conn.execute(alarms.insert(), [_hand_written_alarm(T0)])
        store.upgrade()
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        [before] = store.alarms()
        assert (before.state, before.acked_by) == (AlarmState.ACTIVE_ACK, "officer")
        [same] = store.record_alarms(
            [episode(kind="threshold", severity=Severity.WARNING, at=3, cleared=3)]
        )
        assert same.id == before.id
        assert same.state is AlarmState.CLEARED_ACK and same.acked_by == "officer"
    finally:
        store.close()


def test_upgrade_refuses_duplicate_episodes_with_a_reason(backend_settings: Settings) -> None:
    store = Store.open(backend_settings)
    try:
        upgrade_to(store.engine, "0003")
        with store.engine.begin() as conn:
            conn.execute(
                alarms.insert(),
                [_hand_written_alarm(T0), _hand_written_alarm(T0, "cleared_ack")],
            )
        with pytest.raises(RadmonError, match=r"QN001 threshold opened .*\(2 rows\)"):
            store.upgrade()
        assert migrate.current_revision(store.engine) == "0003"  # nothing half-done
        with store.engine.begin() as conn:
            conn.execute(alarms.delete().where(alarms.c.state == "cleared_ack"))
        store.upgrade()
        assert migrate.current_revision(store.engine) == migrate.head_revision()
        assert [a.state for a in store.alarms("all")] == [AlarmState.ACTIVE_ACK]
    finally:
        store.close()
