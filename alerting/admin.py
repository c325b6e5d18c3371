"""What people do to alerting from the CLI and the API: silences, the outbox's failures.

Thin wrappers over :mod:`alerting.outbox` that open their own transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alerting import outbox
from alerting.outbox import Notification
from radmon import times
from radmon.config_alerting import Matcher
from radmon.errors import InputError
from radmon.store import Store


def add_silence(
    store: Store,
    matcher: Matcher,
    ends_at: datetime,
    created_by: str,
    comment: str = "",
    starts_at: datetime | None = None,
) -> int:
    """Hold back the pages of alarms matching *matcher* until *ends_at*; returns its id.

    A silence that matches everything is refused: that is switching alerting off, which is a
    configuration change, not maintenance.
    """
    now = datetime.now(UTC)
    start = times.ensure_utc(starts_at) if starts_at else now
    end = times.ensure_utc(ends_at)
    if matcher == Matcher():
        raise InputError(
            "silence: give at least one of station, kind, category, severity, district or group"
        )
    _check_names(store, matcher)
    if end <= start:
        raise InputError(f"silence: ends_at {end.isoformat()} is not after {start.isoformat()}")
    if not comment.strip():
        raise InputError("silence: comment: say why (maintenance, calibration, ...)")
    with store.transaction() as conn:
        return outbox.add_silence(conn, matcher, start, end, created_by, comment, now)


def _check_names(store: Store, matcher: Matcher) -> None:
    """A group the configuration does not define is a typo: the silence would hold back
    nothing while its author believes the pages stopped. (A station or district may be
    silenced before it is imported; ``unknown_names`` tells the caller.)"""
    unknown = sorted(set(matcher.groups) - set(store.settings.alerting.station_groups))
    if unknown:
        raise InputError(
            f"silence: unknown group(s) {', '.join(map(repr, unknown))} "
            "(alerting.station_groups names them)"
        )


def unknown_names(store: Store, matcher: Matcher) -> list[str]:
    """The stations and districts of *matcher* that no station has (yet)."""
    stations = store.stations()
    ids = {s.station_id for s in stations}
    districts = {s.district for s in stations if s.district}
    return sorted(set(matcher.stations) - ids) + sorted(set(matcher.districts) - districts)


def expire_silence(store: Store, silence_id: int) -> bool:
    """End a silence now; False when there is no such silence still running."""
    with store.transaction() as conn:
        return outbox.expire_silence(conn, silence_id, datetime.now(UTC))


def silences(store: Store, include_ended: bool = False) -> list[dict]:
    with store.engine.connect() as conn:
        return outbox.silence_rows(conn, datetime.now(UTC), include_ended)


def notifications(store: Store, state: str | None = None, limit: int = 100) -> list[Notification]:
    """The outbox, newest first; *state* one of pending, sending, sent, failed."""
    if state is not None and state not in outbox.STATES:
        raise InputError(f"state {state!r}: expected one of {', '.join(outbox.STATES)}")
    with store.engine.connect() as conn:
        return outbox.listing(conn, state, limit)


def notification_counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return outbox.counts(conn)


def retry_notification(store: Store, notification_id: int) -> bool:
    """Send a failed notification again once its cause is fixed (same key)."""
    with store.transaction() as conn:
        return outbox.retry_failed(conn, notification_id, datetime.now(UTC))
