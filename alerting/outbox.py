"""The alerting tables: the outbox, the notification log, route tracks and silences.

Every function takes the caller's connection, so the planner writes notifications and the log
that says they were written in one transaction. Claiming is one UPDATE over rows picked with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite has a single writer): two dispatchers never
take the same row, and a row whose claim is older than the lease (its dispatcher died between
claim and result) is taken again, with the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, text, update

from alerting.planner import LogEntry, LogKey, Silence
from radmon.config_alerting import Matcher
from radmon.models import Alarm, AlarmState
from radmon.store import dialect_insert
from radmon.store.schema import alarms, alert_sends, alert_tracks, notifications, silences

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
# not sent, and never to be: every alarm it pages about was acknowledged or cleared first
WITHDRAWN = "withdrawn"
STATES = (PENDING, SENDING, SENT, FAILED, WITHDRAWN)
_OPEN = [s.value for s in AlarmState if s.is_open]
# One planner at a time across nodes (PostgreSQL); SQLite's write lock does the same.
PLANNER_LOCK = 0x7261646D  # "radm"


@dataclass(frozen=True)
class Notification:
    id: int
    key: str
    channel: str
    address: str
    contact: str | None
    route: str
    group_key: str
    kind: str
    alarm_ids: list[int]
    subject: str
    text: str
    payload: dict[str, Any]
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    claimed_at: datetime | None
    claimed_by: str | None
    sent_at: datetime | None
    provider_id: str | None
    last_error: str | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Notification:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def notification_key(*parts: object) -> str:
    """A key that is the same when the same plan is written again (a retried transaction)."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:40]


def take_planner_lock(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return True
    return bool(
        conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PLANNER_LOCK}).scalar()
    )


# -- the outbox -------------------------------------------------------------------------------


def enqueue(conn: Connection, rows: Sequence[dict[str, Any]], now: datetime) -> int:
    """Add notifications (dicts of the table's columns); a key already there is skipped."""
    if not rows:
        return 0
    values = [
        {"state": PENDING, "attempts": 0, "created_at": now, "next_attempt_at": now, **row}
        for row in rows
    ]
    stmt = dialect_insert(conn)(notifications).on_conflict_do_nothing(index_elements=["key"])
    return conn.execute(stmt, values).rowcount or 0


def claim(
    conn: Connection, now: datetime, worker: str, limit: int, lease: timedelta
) -> list[Notification]:
    """Take up to *limit* due notifications for *worker*: pending ones whose time has come,
    and ones whose claim has outlived the lease."""
    due = or_(
        and_(notifications.c.state == PENDING, notifications.c.next_attempt_at <= now),
        and_(notifications.c.state == SENDING, notifications.c.claimed_at < now - lease),
    )
    picked = (
        select(notifications.c.id)
        .where(due)
        .order_by(notifications.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(conn.execute(picked).scalars())
    if not ids:
        return []
    stmt = (
        update(notifications)
        .where(notifications.c.id.in_(ids))
        .values(
            state=SENDING,
            claimed_at=now,
            claimed_by=worker,
            attempts=notifications.c.attempts + 1,
        )
        .returning(notifications)
    )
    rows = [Notification.of(r) for r in conn.execute(stmt).mappings()]
    return sorted(rows, key=lambda n: n.id)


def mark_sent(conn: Connection, nid: int, now: datetime, provider_id: str | None) -> bool:
    stmt = (
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.state != SENT)
        .values(state=SENT, sent_at=now, provider_id=provider_id, last_error=None)
    )
    return bool(conn.execute(stmt).rowcount)


def mark_retry(conn: Connection, nid: int, worker: str, at: datetime, error: str) -> bool:
    """Back to pending until *at*; only while *worker* still holds the claim."""
    stmt = (
        update(notifications)
        .where(
            notifications.c.id == nid,
            notifications.c.state == SENDING,
            notifications.c.claimed_by == worker,
        )
        .values(state=PENDING, next_attempt_at=at, last_error=error[:500])
    )
    return bool(conn.execute(stmt).rowcount)


def withdraw_answered(conn: Connection, claimed: Sequence[Notification]) -> set[int]:
    """Withdraw the claimed pages whose alarms were all acknowledged or cleared while they
    waited (a gateway outage queues pages for hours; after it, they must not all go out);
    their ids. Notices of cleared alarms are news whenever they go."""
    pages = [n for n in claimed if n.kind == "firing"]
    found = alarms_by_id(conn, (aid for n in pages for aid in n.alarm_ids))
    answered = {
        n.id
        for n in pages
        if not any(
            found[aid].state is AlarmState.ACTIVE_UNACK for aid in n.alarm_ids if aid in found
        )
    }
    if answered:
        conn.execute(
            update(notifications)
            .where(notifications.c.id.in_(answered), notifications.c.state == SENDING)
            .values(state=WITHDRAWN, last_error="every alarm was acknowledged or cleared first")
        )
    return answered


def mark_failed(conn: Connection, nid: int, error: str) -> bool:
    stmt = (
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.state != SENT)
        .values(state=FAILED, last_error=error[:500])
    )
    return bool(conn.execute(stmt).rowcount)


def listing(conn: Connection, state: str | None = None, limit: int = 100) -> list[Notification]:
    """Notifications, newest first."""
    query = select(notifications).order_by(notifications.c.id.desc()).limit(limit)
    if state is not None:
        query = query.where(notifications.c.state == state)
    return [Notification.of(r) for r in conn.execute(query).mappings()]


def reached(conn: Connection, addresses: Iterable[str], recent: int = 1000) -> list[Notification]:
    """The last *recent* messages to *addresses* that may have reached them, newest first:
    sent, being sent, or tried (a gateway that took a message and then timed out leaves it
    pending for a retry, and its reader may answer meanwhile)."""
    query = (
        select(notifications)
        .where(
            notifications.c.address.in_(sorted(set(addresses))),
            or_(
                notifications.c.state.in_([SENT, SENDING]),
                and_(notifications.c.state == PENDING, notifications.c.attempts > 0),
            ),
        )
        .order_by(notifications.c.id.desc())
        .limit(recent)
    )
    return [Notification.of(r) for r in conn.execute(query).mappings()]


def counts(conn: Connection) -> dict[str, int]:
    query = select(notifications.c.state, func.count()).group_by(notifications.c.state)
    found = {state: 0 for state in STATES}
    found.update({state: n for state, n in conn.execute(query).all()})
    return found


def retry_failed(conn: Connection, nid: int, now: datetime) -> bool:
    """An admin sends a failed notification again (same key: the provider may dedup it)."""
    stmt = (
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.state == FAILED)
        .values(state=PENDING, next_attempt_at=now, attempts=0)
    )
    return bool(conn.execute(stmt).rowcount)


# -- what the planner reads and writes ------------------------------------------------------


def open_alarms(conn: Connection) -> list[Alarm]:
    query = select(alarms).where(alarms.c.state.in_(_OPEN)).order_by(alarms.c.id)
    return [Alarm.model_validate(dict(r)) for r in conn.execute(query).mappings()]


def alarms_by_id(conn: Connection, ids: Iterable[int]) -> dict[int, Alarm]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    query = select(alarms).where(alarms.c.id.in_(wanted))
    found = (Alarm.model_validate(dict(r)) for r in conn.execute(query).mappings())
    return {a.id: a for a in found if a.id is not None}


def tracks(conn: Connection, alarm_ids: Iterable[int]) -> dict[tuple[str, int], datetime]:
    wanted = sorted(set(alarm_ids))
    if not wanted:
        return {}
    query = select(alert_tracks).where(alert_tracks.c.alarm_id.in_(wanted))
    return {(r.route, r.alarm_id): r.first_at for r in conn.execute(query)}


def add_tracks(conn: Connection, new: Mapping[tuple[str, int], datetime]) -> None:
    if new:
        rows = [{"route": r, "alarm_id": a, "first_at": t} for (r, a), t in new.items()]
        conn.execute(dialect_insert(conn)(alert_tracks).on_conflict_do_nothing(), rows)


def forget_tracks(conn: Connection, open_ids: Iterable[int]) -> None:
    """Tracks of alarms that are no longer open serve nobody."""
    keep = sorted(set(open_ids))
    conn.execute(delete(alert_tracks).where(alert_tracks.c.alarm_id.not_in(keep)))


def log(conn: Connection) -> dict[LogKey, LogEntry]:
    return {
        (r.route, r.group_key, r.channel, r.address): LogEntry.from_json(r.last_sent_at, r.marks)
        for r in conn.execute(select(alert_sends))
    }


def write_log(
    conn: Connection, upsert: Mapping[LogKey, LogEntry], forget: Sequence[LogKey]
) -> None:
    for route, group_key, channel, address in forget:
        conn.execute(
            delete(alert_sends).where(
                alert_sends.c.route == route,
                alert_sends.c.group_key == group_key,
                alert_sends.c.channel == channel,
                alert_sends.c.address == address,
            )
        )
    if not upsert:
        return
    rows = [
        {
            "route": route,
            "group_key": group_key,
            "channel": channel,
            "address": address,
            "last_sent_at": entry.last_sent_at,
            "marks": entry.marks_json(),
        }
        for (route, group_key, channel, address), entry in upsert.items()
    ]
    stmt = dialect_insert(conn)(alert_sends)
    stmt = stmt.on_conflict_do_update(
        index_elements=["route", "group_key", "channel", "address"],
        set_={"last_sent_at": stmt.excluded.last_sent_at, "marks": stmt.excluded.marks},
    )
    conn.execute(stmt, rows)


# -- silences ---------------------------------------------------------------------------------


def add_silence(
    conn: Connection,
    matcher: Matcher,
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    comment: str,
    now: datetime,
) -> int:
    stmt = insert(silences).values(
        matchers=matcher.model_dump(mode="json", exclude_defaults=True),
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=created_by,
        comment=comment,
        created_at=now,
    )
    return int(conn.execute(stmt.returning(silences.c.id)).scalar_one())


def expire_silence(conn: Connection, sid: int, now: datetime) -> bool:
    stmt = (
        update(silences).where(silences.c.id == sid, silences.c.ends_at > now).values(ends_at=now)
    )
    return bool(conn.execute(stmt).rowcount)


def silence_rows(
    conn: Connection, now: datetime, include_ended: bool = False
) -> list[dict[str, Any]]:
    query = select(silences).order_by(silences.c.id)
    if not include_ended:
        query = query.where(silences.c.ends_at > now)
    return [dict(r) for r in conn.execute(query).mappings()]


def active_silences(conn: Connection, now: datetime) -> list[Silence]:
    return [
        Silence(r["id"], Matcher.model_validate(r["matchers"]), r["starts_at"], r["ends_at"])
        for r in silence_rows(conn, now)
    ]
