"""Alarm episodes and the detection engine's saved state.

An episode is identified by (station_id, kind, opened_at). The engine reports it again and
again while it lasts, and replays readings after a restart, so recording merges into the stored
row with rules that make a replay a no-op: times and peaks only grow, severity never drops, a
cleared episode stays cleared, and a person's acknowledgement is never overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)

from radmon.models import Alarm, AlarmState, Severity
from radmon.store.engine import dialect_insert
from radmon.store.schema import UTCDateTime, alarm_events, alarms, detector_state

EPISODE_KEY = ("station_id", "kind", "opened_at")
STATE_FILTERS = ("open", "all")
_OPEN = [s.value for s in AlarmState if s.is_open]
_CLEARED = [s.value for s in AlarmState if not s.is_open]
_ACTIVE_UNACK = AlarmState.ACTIVE_UNACK.value
_ACTIVE_ACK = AlarmState.ACTIVE_ACK.value
_CLEARED_UNACK = AlarmState.CLEARED_UNACK.value
_CLEARED_ACK = AlarmState.CLEARED_ACK.value


def _rank(severity: ColumnElement[Any]) -> ColumnElement[int]:
    return case({s.value: s.rank for s in Severity}, value=severity, else_=-1)


def _greater(old: ColumnElement[Any], new: ColumnElement[Any]) -> ColumnElement[Any]:
    """The larger of two nullable values (SQLite's max() and GREATEST differ on NULL)."""
    return case(
        (new.is_(None), old),
        (old.is_(None), new),
        (new > old, new),
        else_=old,
    )


def _row(alarm: Alarm, now: datetime) -> dict[str, Any]:
    return {
        "raised_at": now,  # kept from the first insert: the upsert never updates it
        "station_id": alarm.station_id,
        "kind": alarm.kind,
        "category": alarm.category.value,
        "severity": alarm.severity.value,
        "state": alarm.state.value,
        "opened_at": alarm.opened_at,
        "updated_at": alarm.updated_at,
        "cleared_at": alarm.cleared_at,
        "peak_nsv_h": alarm.peak_nsv_h,
        "baseline_nsv_h": alarm.baseline_nsv_h,
        "acked_by": alarm.acked_by,
        "acked_at": alarm.acked_at,
        "details": alarm.details,
    }


def _alarm(row: Any) -> Alarm:
    return Alarm.model_validate(dict(row))


def _upsert_statement(conn: Connection) -> Any:
    stmt = dialect_insert(conn)(alarms)
    new, old = stmt.excluded, alarms.c
    # not IN (...): an expanding parameter, which an executemany may not carry
    clearing = or_(*(new.state == state for state in _CLEARED))
    merged = {
        "updated_at": _greater(old.updated_at, new.updated_at),
        "peak_nsv_h": _greater(old.peak_nsv_h, new.peak_nsv_h),
        # an update that does not know the baseline keeps the one already stored
        "baseline_nsv_h": func.coalesce(new.baseline_nsv_h, old.baseline_nsv_h),
        "details": new.details,
        "severity": case(
            (_rank(new.severity) > _rank(old.severity), new.severity), else_=old.severity
        ),
        "cleared_at": func.coalesce(new.cleared_at, old.cleared_at),
        # clearing moves the state, and so does a rise in severity after an acknowledgement:
        # the officer acknowledged a warning, not the emergency it became, which must page
        # again; an active report never reopens a cleared episode
        "state": case(
            (and_(clearing, old.state == _ACTIVE_UNACK), _CLEARED_UNACK),
            (and_(clearing, old.state == _ACTIVE_ACK), _CLEARED_ACK),
            (
                and_(old.state == _ACTIVE_ACK, _rank(new.severity) > _rank(old.severity)),
                _ACTIVE_UNACK,
            ),
            else_=old.state,
        ),
    }
    return stmt.on_conflict_do_update(index_elements=list(EPISODE_KEY), set_=merged).returning(
        alarms
    )


# Rows per statement when reading or upserting many episodes: 14 parameters a row stays well
# under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
_ROWS_PER_STATEMENT = 500


def record(conn: Connection, items: Sequence[Alarm], now: datetime) -> list[Alarm]:
    """Upsert *items* in the caller's transaction; one stored alarm per item, in their order.

    Items are applied in episode-key order (stable, so one episode's reports keep their
    order): concurrent writers then lock rows in one global order and cannot deadlock. Each
    answer is the episode as stored once the whole sequence is applied. What changed (opened,
    severity raised, cleared) is appended to the alarm's history at *now*.

    In a few round trips whatever the number of items: the stored episodes are read in one
    query, then the reports go in rounds, the first report of every episode, then the second
    of those that have one, and so on (a multi-row upsert may not touch the same row twice),
    each round one multi-row upsert; the history's lines go in one executemany. So the
    database merges every report by the upsert's rules, as one statement per item would.
    """
    if not items:
        return []
    reports: dict[tuple[str, str, datetime], list[Alarm]] = {}
    for item in sorted(items, key=_key):
        sequence = reports.setdefault(_key(item), [])
        if len(sequence) > 1 and _superseded(sequence[-1], item):
            sequence[-1] = item  # one round fewer, the same row and history
        else:
            sequence.append(item)
    stored = _find_many(conn, list(reports))
    stmt = _upsert_statement(conn)
    events: list[dict[str, Any]] = []
    for n in range(max(len(sequence) for sequence in reports.values())):
        # one executemany: SQLAlchemy sends it as multi-row upserts ("insertmanyvalues"),
        # from a statement compiled once and cached; the rows stay in key order
        rows = [_row(sequence[n], now) for sequence in reports.values() if len(sequence) > n]
        for row in conn.execute(stmt, rows).mappings():
            after = _alarm(row)
            key = _key(after)
            events.extend(_changes(stored.get(key), after, now))
            stored[key] = after
    if events:
        conn.execute(insert(alarm_events), events)
    return [stored[_key(item)] for item in items]


def _superseded(report: Alarm, following: Alarm) -> bool:
    """Whether applying *report* and then *following* leaves the row and its history as
    *following* alone would: an active report of a known episode (not its first in this
    call, whose "opened" line it makes) whose every merged field the next one carries at
    least as far, at the same severity. A backlog judged in one slice reports each open
    episode's growing peak many times; each report was one more round of upserts."""
    return (
        report.state.is_open
        and report.cleared_at is None
        and following.severity == report.severity
        and _covers(following.updated_at, report.updated_at)
        and _covers(following.peak_nsv_h, report.peak_nsv_h)
        and (following.baseline_nsv_h is not None or report.baseline_nsv_h is None)
    )


def _covers(later: Any, earlier: Any) -> bool:
    """Whether the larger of *later* and *earlier* (None the smallest) is *later*."""
    return earlier is None or (later is not None and later >= earlier)


def _find_many(
    conn: Connection, keys: Sequence[tuple[str, str, datetime]]
) -> dict[tuple[str, str, datetime], Alarm]:
    """The stored episodes among *keys*, by key."""
    c = alarms.c
    found: dict[tuple[str, str, datetime], Alarm] = {}
    for first in range(0, len(keys), _ROWS_PER_STATEMENT):
        part = keys[first : first + _ROWS_PER_STATEMENT]
        query = select(alarms).where(tuple_(c.station_id, c.kind, c.opened_at).in_(part))
        for row in conn.execute(query).mappings():
            stored = _alarm(row)
            found[_key(stored)] = stored
    return found


def _changes(before: Alarm | None, after: Alarm, now: datetime) -> list[dict[str, Any]]:
    """The history lines of an episode going from *before* to *after* (see append_event)."""
    assert after.id is not None
    out = []
    if before is None:
        details = {"severity": after.severity.value, "peak_nsv_h": after.peak_nsv_h}
        out.append(_event(after.id, now, "opened", details))
        before = after.model_copy(update={"state": AlarmState.ACTIVE_UNACK})
    elif after.severity.rank > before.severity.rank:
        details = {"from": before.severity.value, "to": after.severity.value}
        out.append(_event(after.id, now, "severity", details))
    if before.state.is_open and not after.state.is_open:
        out.append(_event(after.id, now, "cleared", {"cleared_at": str(after.cleared_at)}))
    return out


def _event(
    alarm_id: int,
    at: datetime,
    event: str,
    details: dict[str, Any] | None = None,
    actor: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """One line of an alarm's history, as ``alarm_events`` takes it."""
    return {
        "alarm_id": alarm_id,
        "at": at,
        "event": event,
        "actor": actor,
        "note": note,
        "details": details or {},
    }


def append_event(
    conn: Connection,
    alarm_id: int,
    at: datetime,
    event: str,
    *,
    actor: str | None = None,
    note: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one line to an alarm's history (never updated, never deleted)."""
    conn.execute(insert(alarm_events).values(_event(alarm_id, at, event, details, actor, note)))


def history(conn: Connection, alarm_id: int) -> list[dict[str, Any]]:
    """The alarm's history, oldest first."""
    query = (
        select(alarm_events).where(alarm_events.c.alarm_id == alarm_id).order_by(alarm_events.c.id)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def get(conn: Connection, alarm_id: int) -> Alarm | None:
    row = conn.execute(select(alarms).where(alarms.c.id == alarm_id)).mappings().first()
    return _alarm(row) if row else None


def clear(conn: Connection, alarm_id: int, by: str, at: datetime, note: str | None) -> Alarm | None:
    """Clear an active alarm by hand; a cleared one is returned unchanged."""
    old = alarms.c
    stmt = (
        update(alarms)
        .where(old.id == alarm_id, old.state.in_(_OPEN))
        .values(
            state=case((old.state == _ACTIVE_ACK, _CLEARED_ACK), else_=_CLEARED_UNACK),
            cleared_at=at,
            cleared_by=by,
        )
        .returning(alarms)
    )
    row = conn.execute(stmt).mappings().first()
    if row is None:
        already = get(conn, alarm_id)
        if already is not None and note:
            append_event(conn, alarm_id, at, "comment", actor=by, note=note)
        return already
    append_event(conn, alarm_id, at, "cleared", actor=by, note=note)
    return _alarm(row)


def _key(alarm: Alarm) -> tuple[str, str, datetime]:
    return (alarm.station_id, alarm.kind, alarm.opened_at)


def listing(
    conn: Connection,
    *,
    state: str = "open",
    station_id: str | None = None,
    since: datetime | None = None,
    limit: int = 1000,
    severities: Sequence[str] | None = None,
    category: str | None = None,
    acknowledged: bool | None = None,
    before: int | None = None,
) -> list[Alarm]:
    """Alarms, the most recently opened first: by (opened_at, id) descending, a total order.

    *before* is the id of the last alarm of the previous page: the page goes on after it in
    that order, wherever that alarm now stands (acknowledged or cleared since), so pages
    never repeat an alarm. LookupError when there is no alarm *before*.
    """
    if state not in STATE_FILTERS:
        raise ValueError(f"state={state!r}: expected one of {', '.join(STATE_FILTERS)}")
    if limit < 1:
        raise ValueError(f"limit={limit!r}: expected at least 1")
    c = alarms.c
    query = select(alarms).order_by(c.opened_at.desc(), c.id.desc()).limit(limit)
    if state == "open":
        query = query.where(c.state.in_(_OPEN))
    if station_id is not None:
        query = query.where(c.station_id == station_id)
    if since is not None:
        query = query.where(c.opened_at >= since)
    if severities is not None:
        query = query.where(c.severity.in_(list(severities)))
    if category is not None:
        query = query.where(c.category == category)
    if acknowledged is not None:
        acked = [_ACTIVE_ACK, _CLEARED_ACK]
        query = query.where(c.state.in_(acked) if acknowledged else c.state.not_in(acked))
    if before is not None:
        # opened_at is part of the episode key: it never changes once stored
        opened_at = conn.execute(select(c.opened_at).where(c.id == before)).scalar()
        if opened_at is None:
            raise LookupError(f"before={before}: no such alarm")
        query = query.where(
            or_(c.opened_at < opened_at, and_(c.opened_at == opened_at, c.id < before))
        )
    return [_alarm(row) for row in conn.execute(query).mappings()]


def acknowledge(
    conn: Connection, alarm_id: int, by: str, at: datetime, note: str | None = None
) -> Alarm | None:
    """Acknowledge one alarm in the caller's transaction; None when there is no such alarm.

    Decided in the UPDATE itself, on the row as it is when locked, so an acknowledgement racing
    the engine's clearing loses neither; an alarm already acknowledged keeps its first ack
    (a later one is kept in the history as a comment, when it says something).
    """
    old = alarms.c
    unacked = old.state.in_([_ACTIVE_UNACK, _CLEARED_UNACK])
    stmt = (
        update(alarms)
        .where(old.id == alarm_id)
        .values(
            state=case(
                (old.state == _ACTIVE_UNACK, _ACTIVE_ACK),
                (old.state == _CLEARED_UNACK, _CLEARED_ACK),
                else_=old.state,
            ),
            acked_by=case((unacked, literal(by)), else_=old.acked_by),
            acked_at=case((unacked, literal(at, UTCDateTime())), else_=old.acked_at),
        )
        .returning(alarms)
    )
    row = conn.execute(stmt).mappings().first()
    if row is None:
        return None
    acked = _alarm(row)
    if acked.acked_by == by and acked.acked_at == at:
        append_event(conn, alarm_id, at, "acknowledged", actor=by, note=note)
    elif note:
        append_event(conn, alarm_id, at, "comment", actor=by, note=note)
    return acked


def save_state(conn: Connection, name: str, payload: bytes, saved_at: datetime) -> None:
    """Keep *payload* as the state of engine *name*, replacing the one saved before."""
    stmt = dialect_insert(conn)(detector_state).values(
        name=name, saved_at=saved_at, payload=payload
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"saved_at": stmt.excluded.saved_at, "payload": stmt.excluded.payload},
    )
    conn.execute(stmt)


def load_state(conn: Connection, name: str) -> tuple[datetime, bytes] | None:
    """When engine *name* saved its state, and the state; None when it never did."""
    query = select(detector_state.c.saved_at, detector_state.c.payload).where(
        detector_state.c.name == name
    )
    row = conn.execute(query).first()
    return (row[0], bytes(row[1])) if row else None
