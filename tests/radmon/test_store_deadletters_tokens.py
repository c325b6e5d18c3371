"""The dead-letter store and station tokens, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from radmon.models import DeadLetter
from radmon.store import Store

AT = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)


def _letter(payload: str, source: str = "mqtt", minutes: int = 0) -> DeadLetter:
    return DeadLetter(
        received_at=AT + timedelta(minutes=minutes),
        source=source,
        origin="radmon/v1/QN001/dose",
        station_id="QN001",
        reason="malformed JSON",
        payload=payload,
    )


def test_dead_letters_are_kept_once_and_listed_newest_first(store: Store) -> None:
    letters = [_letter("{a"), _letter("{b", minutes=1), _letter("x,y", "import:csv", 2)]
    assert store.keep_dead_letters(letters) == 3
    assert store.keep_dead_letters(letters[:2]) == 0  # a redelivery is not kept twice
    assert [d.payload for d in store.dead_letters()] == ["x,y", "{b", "{a"]
    assert [d.payload for d in store.dead_letters(source="mqtt", limit=1)] == ["{b"]
    assert [d.payload for d in store.dead_letters(since=AT + timedelta(minutes=1))] == [
        "x,y",
        "{b",
    ]
    assert store.dead_letter_counts() == {"mqtt": 2, "import:csv": 1}


def test_the_same_bad_body_from_two_stations_is_two_letters(store: Store) -> None:
    """Two stations behind one gateway push the same bad body: each must hear of it."""
    first = _letter("{a").model_copy(update={"source": "http", "origin": "10.0.0.1"})
    second = first.model_copy(update={"station_id": "QN002"})
    assert store.keep_dead_letters([first, second]) == 2
    assert store.keep_dead_letters([second]) == 0
    assert sorted(d.station_id or "" for d in store.dead_letters()) == ["QN001", "QN002"]


def test_an_oversized_or_odd_letter_is_still_kept(store: Store) -> None:
    odd = _letter("é" * 100_000).model_copy(update={"station_id": "S" * 300})
    assert store.keep_dead_letters([odd]) == 1
    [kept] = store.dead_letters()
    assert len(kept.payload) == 65536 and len(kept.station_id or "") == 64


def test_station_tokens_are_stored_hashed_and_can_be_revoked(store: Store) -> None:
    token = store.issue_station_token("QN001", "roof logger")
    assert token.startswith("rmst_") and len(token) > 40
    assert store.station_for_token(token) == "QN001"
    assert store.station_for_token(token + "x") is None
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT token_sha256 FROM station_tokens").scalar()
    assert token not in stored
    assert store.revoke_station_tokens("QN001") == 1
    assert store.station_for_token(token) is None
