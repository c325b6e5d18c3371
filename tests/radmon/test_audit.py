"""The audit log on both backends: entries only added, newest first, filters and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from radmon import audit
from radmon.store import Store


def test_entries_come_back_newest_first_with_filters_and_paging(store: Store) -> None:
    start = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
    for n in range(5):
        audit.record(
            store,
            "olga" if n % 2 else "ada",
            f"POST /x/{n}",
            target=f"/x/{n}",
            source="10.0.0.1",
            details={"n": n},
            at=start + timedelta(minutes=n),
        )
    every = audit.entries(store)
    assert [e.details["n"] for e in every] == [4, 3, 2, 1, 0]
    assert [e.details["n"] for e in audit.entries(store, actor="olga")] == [3, 1]
    since = start + timedelta(minutes=3)
    assert [e.details["n"] for e in audit.entries(store, since=since)] == [4, 3]
    first = audit.entries(store, limit=2)
    rest = audit.entries(store, before_id=first[-1].id)
    assert [e.id for e in first + rest] == [e.id for e in every]


def test_text_the_database_would_refuse_is_kept_readable(store: Store) -> None:
    """PostgreSQL text refuses NUL; a hostile path must still leave its trace."""
    audit.record(store, "anonymous", "POST /api/v1/alarms/{alarm_id}/ack", target="/a\x00b")
    [entry] = audit.entries(store)
    assert entry.target == "/a\\x00b"
