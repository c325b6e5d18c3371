"""Store.record_alarms in bulk: many alarm changes in a few round trips, on both backends, with
exactly what recording them one at a time stores (rows, answers and history)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, select

from radmon.models import Alarm, AlarmState, Category, Severity
from radmon.store import Store
from radmon.store.schema import alarm_events, alarms

T0 = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
MIN = timedelta(minutes=1)
SEVERITIES = list(Severity)


def report(station: int, kind: str, opened: int, at: int, rng: random.Random) -> Alarm:
    """An engine report on an episode: any severity, peak, baseline, cleared or not."""
    cleared = rng.random() < 0.25
    return Alarm(
        station_id=f"QN{station:03d}",
        kind=kind,
        category=Category.TECHNICAL if kind == "offline" else Category.RADIOLOGICAL,
        severity=rng.choice(SEVERITIES),
        state=AlarmState.CLEARED_UNACK if cleared else AlarmState.ACTIVE_UNACK,
        opened_at=T0 + opened * MIN,
        updated_at=None if rng.random() < 0.1 else T0 + at * MIN,
        cleared_at=T0 + at * MIN if cleared else None,
        peak_nsv_h=None if rng.random() < 0.2 else round(rng.uniform(80, 5000), 1),
        baseline_nsv_h=None if rng.random() < 0.3 else round(rng.uniform(70, 90), 1),
        details={"at": at, "n": rng.randrange(1000)},
    )


def reports(seed: int, episodes: int = 60, count: int = 400) -> list[Alarm]:
    """Reports on *episodes* episodes, several per episode, shuffled across episodes."""
    rng = random.Random(seed)
    keys = [(rng.randrange(20), rng.choice(["step", "offline", "anomaly"]), rng.randrange(50))]
    while len(keys) < episodes:
        key = (rng.randrange(20), rng.choice(["step", "offline", "anomaly"]), rng.randrange(50))
        if key not in keys:
            keys.append(key)
    out = []
    for _ in range(count):
        station, kind, opened = rng.choice(keys)
        out.append(report(station, kind, opened, opened + rng.randrange(30), rng))
    return out


def rows(store: Store) -> list[dict[str, Any]]:
    """Every episode as stored, without the store's own id and wall-clock stamp."""
    with store.engine.connect() as conn:
        found = [dict(row) for row in conn.execute(select(alarms)).mappings()]
    for row in found:
        del row["id"], row["raised_at"]
    return sorted(found, key=lambda r: (r["station_id"], r["kind"], r["opened_at"]))


def histories(store: Store) -> dict[tuple, list[tuple]]:
    """Each episode's history lines in order, without their ids and times."""
    query = (
        select(alarms.c.station_id, alarms.c.kind, alarms.c.opened_at, alarm_events)
        .join(alarm_events, alarm_events.c.alarm_id == alarms.c.id)
        .order_by(alarm_events.c.id)
    )
    out: dict[tuple, list[tuple]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(query).mappings():
            key = (row["station_id"], row["kind"], row["opened_at"])
            out.setdefault(key, []).append((row["event"], row["actor"], row["details"]))
    return out


def forget(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(delete(alarm_events))
        conn.execute(delete(alarms))


def answers(recorded: list[Alarm]) -> list[tuple]:
    return [
        (a.station_id, a.kind, a.opened_at, a.severity, a.state, a.updated_at, a.peak_nsv_h)
        for a in recorded
    ]


def seed_some(store: Store) -> None:
    """Episodes stored before the batch: some of them acknowledged by a person."""
    earlier = store.record_alarms(reports(seed=7, episodes=30, count=60))
    for alarm in earlier[::4]:
        store.acknowledge_alarm(alarm.id, "duty officer", T0 + 100 * MIN)


def test_one_call_stores_what_one_at_a_time_stores(store: Store) -> None:
    batch = reports(seed=1)
    seed_some(store)
    together = store.record_alarms(batch)
    stored_together, history_together = rows(store), histories(store)
    ids = {(a.station_id, a.kind, a.opened_at): a.id for a in store.alarms("all", limit=10_000)}
    assert [a.id for a in together] == [ids[(a.station_id, a.kind, a.opened_at)] for a in batch]

    forget(store)
    seed_some(store)
    apart = [store.record_alarms([item])[0] for item in batch]
    assert rows(store) == stored_together
    assert histories(store) == history_together
    # each answer is the episode as stored at the end; one at a time, the last answer of an
    # episode is that too
    last = {(a.station_id, a.kind, a.opened_at): a for a in apart}
    assert answers(together) == answers([last[(a.station_id, a.kind, a.opened_at)] for a in batch])
    events = {line[0] for lines in history_together.values() for line in lines}
    assert events == {"opened", "severity", "cleared", "acknowledged"}  # every kind exercised


def test_recording_again_changes_nothing(store: Store) -> None:
    batch = reports(seed=2)
    first = store.record_alarms(batch)
    stored, history = rows(store), histories(store)
    again = store.record_alarms(batch)
    assert rows(store) == stored
    assert histories(store) == history  # no line added by a replay
    assert again == first
    for item in batch:  # one at a time, as after a restart: a no-op too
        store.record_alarms([item])
    assert rows(store) == stored
    assert histories(store) == history


def test_many_changes_take_a_few_statements(store: Store) -> None:
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        recorded = store.record_alarms(batch := reports(seed=3, episodes=300, count=900))
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert len(recorded) == 900
    assert len(rows(store)) == len({(a.station_id, a.kind, a.opened_at) for a in batch}) > 250
    # one read, one upsert per round (every episode's first report, then every second one,
    # ...), one insert of history lines (SQLite adds BEGIN/COMMIT-like statements of its
    # own): not one statement per change
    rounds = max(Counter((a.station_id, a.kind, a.opened_at) for a in batch).values())
    writes = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "INSERT"))]
    assert len(writes) <= rounds + 2 < len(batch) / 50, writes


def test_a_growing_peak_takes_one_round_and_every_severity_step_keeps_its_line(
    store: Store,
) -> None:
    """A backlog judged in one slice reports an open episode's growing peak many times: the
    reports a later one at the same severity carries further are one round, not one each,
    and the history still has every severity step (warning → alert → emergency)."""
    steps = [Severity.WARNING] * 5 + [Severity.ALERT] * 5 + [Severity.EMERGENCY] * 5
    batch = [
        Alarm(
            station_id="QN001",
            kind="step",
            category=Category.RADIOLOGICAL,
            severity=severity,
            state=AlarmState.ACTIVE_UNACK,
            opened_at=T0,
            updated_at=T0 + i * MIN,
            peak_nsv_h=100.0 + i,
            baseline_nsv_h=None if i == 2 else 80.0 + i,
            details={"at": i},
        )
        for i, severity in enumerate(steps)
    ]
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        together = store.record_alarms(batch)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    stored, history = rows(store), histories(store)
    upserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO ALARMS")]
    assert len(upserts) <= 5 < len(batch), upserts
    assert [line[2] for line in history[("QN001", "step", T0)] if line[0] == "severity"] == [
        {"from": "warning", "to": "alert"},
        {"from": "alert", "to": "emergency"},
    ]
    forget(store)
    for item in batch:
        store.record_alarms([item])
    assert rows(store) == stored
    assert histories(store) == history
    assert answers(together) == answers([together[-1]] * len(batch))
