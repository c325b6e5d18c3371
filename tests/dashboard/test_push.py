"""HTTP push (POST /api/v1/readings): station tokens, the shared decoder, the dead-letter store."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from dashboard import create_app
from radmon.store import Store


def _post(client: TestClient, token: str | None, body: object | bytes):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
        return client.post("/api/v1/readings", content=body, headers=headers)
    return client.post("/api/v1/readings", json=body, headers=headers)


def test_a_station_pushes_with_its_token_and_a_retry_is_a_no_op(
    closed_client: TestClient, seeded: Store, now: datetime
) -> None:
    token = seeded.issue_station_token("HP-003", "logger on the roof")
    at = (now - timedelta(minutes=1)).isoformat()
    body = [
        {"time": at, "dose_rate": 0.11, "unit": "uSv/h"},
        {"station_id": "HP-003", "time": now.timestamp(), "dose_rate": 112, "unit": "nSv/h"},
    ]
    first = _post(closed_client, token, body)
    assert first.status_code == 200, first.text
    assert first.json() == {"station_id": "HP-003", "accepted": 2, "new": 2, "rejected": []}
    again = _post(closed_client, token, body)
    assert again.json()["new"] == 0
    stored = seeded.readings("HP-003", now - timedelta(hours=1), now + timedelta(seconds=1))
    assert [r.dose_rate_nsv_h for r in stored] == [110.0, 112.0]


def test_only_the_reading_stored_is_handed_to_the_detectors(
    closed_client: TestClient, seeded: Store, now: datetime
) -> None:
    """A repeat of a stored reading with another value, in the same body or a later one, is
    not stored; were it judged, 2 Sv/h would page the officer about a reading nobody kept."""
    judged: list = []
    closed_client.app.state.on_stored = judged.extend
    token = seeded.issue_station_token("HP-003")
    at = now.isoformat()
    same_body = [
        {"time": at, "dose_rate": 95, "unit": "nSv/h"},
        {"time": at, "dose_rate": 2, "unit": "Sv/h"},
    ]
    assert _post(closed_client, token, same_body).json()["new"] == 1
    assert _post(closed_client, token, same_body[1]).json()["new"] == 0
    assert [r.dose_rate_nsv_h for r in judged] == [95.0]
    stored = seeded.readings("HP-003", now - timedelta(seconds=1), now + timedelta(seconds=1))
    assert [r.dose_rate_nsv_h for r in stored] == [95.0]


def test_a_reading_ahead_of_the_clock_is_refused_and_told_to_the_detectors(
    closed_client: TestClient, seeded: Store, now: datetime
) -> None:
    """Local time sent as UTC: 7 h ahead. Refused (and dead-lettered) as before, and handed
    to the detectors' future-time test, the only one that hears of it."""
    stored, ahead = [], []
    closed_client.app.state.on_stored = stored.extend
    closed_client.app.state.on_ahead = ahead.extend
    token = seeded.issue_station_token("HP-003")
    later = now + timedelta(hours=7)
    answer = _post(
        closed_client, token, {"time": later.isoformat(), "dose_rate": 95, "unit": "nSv/h"}
    )
    assert answer.status_code == 422 and "ahead of the server clock" in answer.json()["rejected"][0]
    assert stored == []
    assert [(r.station_id, r.time, r.dose_rate_nsv_h) for r in ahead] == [("HP-003", later, 95.0)]


def test_tokens_are_checked(closed_client: TestClient, seeded: Store, now: datetime) -> None:
    body = {"time": now.isoformat(), "dose_rate": 1, "unit": "nSv/h"}
    missing = _post(closed_client, None, body)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert _post(closed_client, "rmst_forged", body).status_code == 401
    token = seeded.issue_station_token("HN-001")
    assert seeded.revoke_station_tokens("HN-001") == 1
    assert _post(closed_client, token, body).status_code == 401
    # a token of one station cannot post for another
    other = seeded.issue_station_token("HN-001")
    crossed = _post(closed_client, other, {**body, "station_id": "HP-003"})
    assert crossed.status_code == 422
    assert "does not match" in crossed.json()["rejected"][0]


def test_bad_items_are_dead_lettered_and_good_ones_kept(
    closed_client: TestClient, seeded: Store, now: datetime
) -> None:
    token = seeded.issue_station_token("HP-003")
    good = {"time": now.isoformat(), "dose_rate": 95, "unit": "nSv/h"}
    bad = {"time": now.isoformat(), "dose_rate": 95, "unit": "furlongs"}
    answer = _post(closed_client, token, [good, bad])
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 1 and "furlongs" in answer.json()["rejected"][0]
    garbage = _post(closed_client, token, b"{oops")
    assert garbage.status_code == 422 and "malformed JSON" in garbage.json()["rejected"][0]
    letters = seeded.dead_letters(source="http")
    furlongs = json.dumps(bad, ensure_ascii=False)
    assert {d.payload for d in letters} == {furlongs, "{oops"}
    assert all(d.station_id == "HP-003" and d.origin.startswith("testclient") for d in letters)


def test_an_oversized_body_is_refused_before_it_is_read(
    closed_client: TestClient, seeded: Store, settings
) -> None:
    token = seeded.issue_station_token("HP-003")
    body = b"[" + b" " * settings.ingest.max_payload_bytes + b"]"
    assert _post(closed_client, token, body).status_code == 413
    # told by its length, or found out while streaming it: either way a dead letter says so
    streamed = closed_client.post(
        "/api/v1/readings",
        content=(b"[" + b" " * 1024 for _ in range(settings.ingest.max_payload_bytes // 1024 + 2)),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    letters = seeded.dead_letters(source="http")
    assert len(letters) == 2
    assert {d.station_id for d in letters} == {"HP-003"}
    assert all("ingest.max_payload_bytes" in d.reason for d in letters)


def test_metrics_count_dead_letters_for_a_local_scraper(
    closed_client: TestClient, seeded: Store, settings
) -> None:
    token = seeded.issue_station_token("HP-003")
    _post(closed_client, token, b"not json")
    # TestClient's peer is not loopback: the endpoint is closed like the API ...
    assert closed_client.get("/metrics").status_code == 401
    # ... and open to a scraper on the same machine.
    local = TestClient(create_app(seeded, settings), client=("127.0.0.1", 40000))
    text = local.get("/metrics").text
    assert 'radmon_dead_letters{source="http"} 1' in text.splitlines()


def test_bodies_that_once_answered_500_are_422_and_dead_letters(
    closed_client: TestClient, seeded: Store
) -> None:
    from tests.ingest.test_mqtt_ingest import POISON

    token = seeded.issue_station_token("HP-003")
    for body in POISON:
        answer = _post(closed_client, token, body)
        assert answer.status_code == 422, (body[:60], answer.text)
    assert len(seeded.dead_letters(source="http")) == len(POISON)
