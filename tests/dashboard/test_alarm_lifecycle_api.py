"""The alarm lifecycle and alerting administration over HTTP, on a real SQLite store."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from argon2 import PasswordHasher

from alerting import admin
from alerting.outbox import enqueue
from dashboard import create_app
from radmon import users
from radmon.config import Settings
from radmon.models import Alarm, AlarmState, Category, Severity
from radmon.store import Store
from radmon.users import add_user
from tests.dashboard.conftest import LOOPBACK, TestClient, csrf_headers
from tests.dashboard.test_alarms_api import FIELDS

PASSWORD = "correct horse"
UNKNOWN = 987_654


def basic(name: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


VIEWER, OFFICER, COMMANDER, ADMIN = basic("viet"), basic("olga"), basic("cuong"), basic("ada")


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 at its cheapest: these tests are about alarms, not about password hashing."""
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def people(seeded: Store) -> Store:
    for name, role in [("viet", "viewer"), ("olga", "officer"), ("cuong", "commander")]:
        add_user(seeded, name, role, PASSWORD)
    add_user(seeded, "ada", "admin", PASSWORD)
    return seeded


@pytest.fixture
def site(people: Store, settings: Settings) -> Iterator[TestClient]:
    """A real server (not the loopback demo): every request needs a user."""
    with TestClient(create_app(people, settings)) as client:
        yield client


@pytest.fixture
def demo(people: Store, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(people, settings, open_reads=True), base_url=LOOPBACK) as client:
        yield client


@pytest.fixture
def alarm_id(people: Store, now: datetime) -> int:
    """An active, unacknowledged threshold alarm at HN-001."""
    [stored] = people.record_alarms(
        [
            Alarm(
                station_id="HN-001",
                kind="threshold",
                category=Category.RADIOLOGICAL,
                severity=Severity.ALERT,
                opened_at=now - timedelta(hours=1),
                peak_nsv_h=612.5,
            )
        ]
    )
    assert stored.id is not None
    return stored.id


def between(text: str, before: datetime, after: datetime) -> bool:
    return before <= datetime.fromisoformat(text) <= after


def history(client: TestClient, alarm_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/alarms/{alarm_id}", headers=VIEWER)
    assert response.status_code == 200
    return response.json()["history"]


# -- GET /api/v1/alarms/{id} -------------------------------------------------------------------


def test_an_alarm_comes_with_its_history(site: TestClient, alarm_id: int, now: datetime) -> None:
    response = site.get(f"/api/v1/alarms/{alarm_id}", headers=VIEWER)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == FIELDS | {"history"}
    assert body["id"] == alarm_id and body["state"] == "active_unack"
    assert datetime.fromisoformat(body["opened_at"]) == now - timedelta(hours=1)
    [opened] = body["history"]
    assert opened["event"] == "opened" and opened["alarm_id"] == alarm_id
    assert opened["actor"] is None and opened["note"] is None
    assert opened["details"] == {"severity": "alert", "peak_nsv_h": 612.5}
    assert opened["at"].endswith("Z")


def test_an_unknown_alarm_is_404(site: TestClient) -> None:
    response = site.get(f"/api/v1/alarms/{UNKNOWN}", headers=VIEWER)
    assert response.status_code == 404
    assert response.json() == {"detail": f"alarm {UNKNOWN}: no such alarm"}


@pytest.mark.parametrize("bad", ["0", "-3", "abc", "1.5", str(2**63)])
def test_alarm_ids_are_positive_integers(site: TestClient, bad: str) -> None:
    for method, path in [("GET", ""), ("POST", "/ack"), ("POST", "/clear")]:
        response = site.request(method, f"/api/v1/alarms/{bad}{path}", headers=OFFICER)
        assert response.status_code == 422, (method, path)
        assert response.json()["detail"][0]["loc"] == ["path", "alarm_id"]


def test_reading_an_alarm_needs_a_user(site: TestClient, alarm_id: int) -> None:
    response = site.get(f"/api/v1/alarms/{alarm_id}")
    assert response.status_code == 401
    assert "HN-001" not in response.text


# -- acknowledge ---------------------------------------------------------------------------


def test_an_officer_acknowledges_recording_who_and_when(site: TestClient, alarm_id: int) -> None:
    before = datetime.now(UTC)
    response = site.post(
        f"/api/v1/alarms/{alarm_id}/ack", headers=OFFICER, json={"comment": "on my way"}
    )
    after = datetime.now(UTC)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == alarm_id
    assert body["state"] == "active_ack"
    assert body["acked_by"] == "olga"
    assert between(body["acked_at"], before, after)
    last = history(site, alarm_id)[-1]
    assert (last["event"], last["actor"], last["note"]) == ("acknowledged", "olga", "on my way")
    assert last["at"] == body["acked_at"]


def test_the_body_is_optional(site: TestClient, alarm_id: int) -> None:
    response = site.post(f"/api/v1/alarms/{alarm_id}/ack", headers=COMMANDER)
    assert response.status_code == 200
    assert response.json()["acked_by"] == "cuong"
    last = history(site, alarm_id)[-1]
    assert (last["event"], last["note"]) == ("acknowledged", None)


def test_a_second_acknowledgement_keeps_the_first(site: TestClient, alarm_id: int) -> None:
    first = site.post(f"/api/v1/alarms/{alarm_id}/ack", headers=OFFICER).json()
    again = site.post(
        f"/api/v1/alarms/{alarm_id}/ack", headers=COMMANDER, json={"comment": "me too"}
    )
    assert again.status_code == 200
    assert again.json()["acked_by"] == "olga"
    assert again.json()["acked_at"] == first["acked_at"]
    assert again.json() == first
    events = [(e["event"], e["actor"], e["note"]) for e in history(site, alarm_id)]
    assert events[1:] == [("acknowledged", "olga", None), ("comment", "cuong", "me too")]


def test_the_loopback_demo_acknowledges_as_demo(demo: TestClient, alarm_id: int) -> None:
    refused = demo.post(f"/api/v1/alarms/{alarm_id}/ack")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    response = demo.post(f"/api/v1/alarms/{alarm_id}/ack", headers=csrf_headers(demo))
    assert response.status_code == 200
    assert response.json()["acked_by"] == "demo"
    assert history(demo, alarm_id)[-1]["actor"] == "demo"


# -- who may write -------------------------------------------------------------------------

WRITES = [("ack", None), ("clear", None), ("comments", {"text": "seen"})]


@pytest.mark.parametrize(("action", "body"), WRITES)
def test_a_viewer_may_not_act_on_alarms(
    site: TestClient, people: Store, alarm_id: int, action: str, body: dict | None
) -> None:
    response = site.post(f"/api/v1/alarms/{alarm_id}/{action}", headers=VIEWER, json=body)
    assert response.status_code == 403
    assert response.json()["detail"] == "viet is viewer; this needs officer or above"
    assert people.alarm(alarm_id).state is AlarmState.ACTIVE_UNACK
    assert len(people.alarm_history(alarm_id)) == 1


@pytest.mark.parametrize(("action", "body"), WRITES)
def test_anonymous_writes_are_challenged_off_the_demo(
    site: TestClient, people: Store, alarm_id: int, action: str, body: dict | None
) -> None:
    response = site.post(f"/api/v1/alarms/{alarm_id}/{action}", json=body)
    assert response.status_code == 401
    assert "Basic" in response.headers["www-authenticate"]
    assert len(people.alarm_history(alarm_id)) == 1


@pytest.mark.parametrize(("action", "body"), WRITES)
def test_writes_to_an_unknown_alarm_are_404(
    site: TestClient, action: str, body: dict | None
) -> None:
    response = site.post(f"/api/v1/alarms/{UNKNOWN}/{action}", headers=OFFICER, json=body)
    assert response.status_code == 404
    assert response.json() == {"detail": f"alarm {UNKNOWN}: no such alarm"}


@pytest.mark.parametrize("action", ["ack", "clear"])
@pytest.mark.parametrize(
    "body",
    [
        {"comment": 5},
        {"comment": ""},
        {"comment": "x" * 2001},
        {"note": "typo"},
        ["comment"],
        {"comment": "a\x00b"},  # PostgreSQL cannot store it: was a 500 there
        b'{"comment": "a\\ud800b"}',  # no UTF-8 for it: echoing it back was a 500
        b'{"\\ud800": 1}',
    ],
)
def test_bad_action_bodies_are_422(
    site: TestClient, people: Store, alarm_id: int, action: str, body: Any
) -> None:
    response = _post_json(site, f"/api/v1/alarms/{alarm_id}/{action}", body)
    assert response.status_code == 422
    assert people.alarm(alarm_id).state is AlarmState.ACTIVE_UNACK


def _post_json(site: TestClient, path: str, body: Any):
    """POST *body* as JSON, or *bytes* as they are (a lone surrogate escaped in JSON has no
    Python str the client could encode)."""
    if isinstance(body, bytes):
        headers = {**OFFICER, "Content-Type": "application/json"}
        return site.post(path, headers=headers, content=body)
    return site.post(path, headers=OFFICER, json=body)


# -- clear ---------------------------------------------------------------------------------


def test_clear_then_the_history_shows_it(site: TestClient, people: Store, alarm_id: int) -> None:
    before = datetime.now(UTC)
    response = site.post(
        f"/api/v1/alarms/{alarm_id}/clear", headers=OFFICER, json={"comment": "probe swapped"}
    )
    after = datetime.now(UTC)
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "cleared_unack"
    assert body["cleared_by"] == "olga"
    assert between(body["cleared_at"], before, after)
    last = history(site, alarm_id)[-1]
    assert (last["event"], last["actor"], last["note"]) == ("cleared", "olga", "probe swapped")
    assert people.alarms(state="open") == []


def test_clearing_a_cleared_alarm_answers_it_unchanged(site: TestClient, alarm_id: int) -> None:
    first = site.post(f"/api/v1/alarms/{alarm_id}/clear", headers=OFFICER).json()
    again = site.post(f"/api/v1/alarms/{alarm_id}/clear", headers=COMMANDER)
    assert again.status_code == 200
    assert again.json() == first
    assert [e["event"] for e in history(site, alarm_id)] == ["opened", "cleared"]
    # a cleared alarm may still be acknowledged: the officer saw it
    acked = site.post(f"/api/v1/alarms/{alarm_id}/ack", headers=COMMANDER).json()
    assert acked["state"] == "cleared_ack" and acked["cleared_by"] == "olga"


# -- comments ------------------------------------------------------------------------------


def test_a_comment_joins_the_history(site: TestClient, alarm_id: int) -> None:
    before = datetime.now(UTC)
    response = site.post(
        f"/api/v1/alarms/{alarm_id}/comments",
        headers=OFFICER,
        json={"text": "  Đã gọi trạm, đang kiểm tra.  "},
    )
    assert response.status_code == 201
    assert response.json()["id"] == alarm_id
    assert response.json()["state"] == "active_unack"  # a comment acknowledges nothing
    last = history(site, alarm_id)[-1]
    assert (last["event"], last["actor"]) == ("comment", "olga")
    assert last["note"] == "Đã gọi trạm, đang kiểm tra."
    assert between(last["at"], before, datetime.now(UTC))


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": ""},
        {"text": "   "},
        {"text": "x" * 2001},
        {"text": None},
        None,
        {"text": "a\x00b"},
        {"text": "\x00"},
        b'{"text": "a\\ud800b"}',
    ],
)
def test_a_comment_needs_text_of_at_most_2000_characters(
    site: TestClient, people: Store, alarm_id: int, body: Any
) -> None:
    response = _post_json(site, f"/api/v1/alarms/{alarm_id}/comments", body)
    assert response.status_code == 422
    assert len(people.alarm_history(alarm_id)) == 1


def test_a_comment_of_2000_characters_is_kept(site: TestClient, alarm_id: int) -> None:
    text = "x" * 2000
    response = site.post(
        f"/api/v1/alarms/{alarm_id}/comments", headers=OFFICER, json={"text": text}
    )
    assert response.status_code == 201
    assert history(site, alarm_id)[-1]["note"] == text


def test_openapi_documents_the_alarm_writes(site: TestClient) -> None:
    spec = site.get("/openapi.json").json()
    paths = spec["paths"]
    for action in ("ack", "clear", "comments"):
        operation = paths[f"/api/v1/alarms/{{alarm_id}}/{action}"]["post"]
        assert {"401", "403", "404", "422"} <= set(operation["responses"])
    answer = paths["/api/v1/alarms/{alarm_id}"]["get"]["responses"]["200"]["content"]
    name = answer["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(spec["components"]["schemas"][name]["properties"]) == FIELDS | {"history"}


# -- the short link of SMS -------------------------------------------------------------------


def test_the_sms_short_link_redirects_to_the_alarm(
    site: TestClient, demo: TestClient, alarm_id: int
) -> None:
    response = site.get(f"/a/{alarm_id}", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == f"/alarms/{alarm_id}"
    page = site.get(f"/a/{alarm_id}", follow_redirects=False)
    login = site.get(page.headers["location"], follow_redirects=False)
    assert login.status_code == 303  # the alarm page asks for a login
    assert login.headers["location"].startswith("/login?next=")
    assert "HN-001" not in login.text
    followed = demo.get(f"/a/{alarm_id}")
    assert followed.status_code == 200 and followed.url.path == f"/alarms/{alarm_id}"
    assert f"#{alarm_id}" in followed.text and "HN-001" in followed.text
    assert site.get("/a/0", follow_redirects=False).status_code == 422


# -- silences ------------------------------------------------------------------------------


def test_silences_are_added_listed_and_expired(site: TestClient) -> None:
    before = datetime.now(UTC)
    created = site.post(
        "/api/v1/silences",
        headers=OFFICER,
        json={"stations": ["HN-001"], "kinds": ["offline"], "duration_minutes": 90, "comment": "x"},
    )
    after = datetime.now(UTC)
    assert created.status_code == 201
    silence = created.json()
    assert silence["created_by"] == "olga"
    assert silence["comment"] == "x"
    assert silence["matchers"]["stations"] == ["HN-001"]
    assert silence["matchers"]["kinds"] == ["offline"]
    assert silence["matchers"]["severities"] == []
    ends = datetime.fromisoformat(silence["ends_at"])
    assert before + timedelta(minutes=90) <= ends <= after + timedelta(minutes=90)
    assert between(silence["starts_at"], before, after)

    assert site.get("/api/v1/silences", headers=VIEWER).json() == [silence]
    assert site.delete(f"/api/v1/silences/{silence['id']}", headers=OFFICER).status_code == 204
    assert site.get("/api/v1/silences", headers=VIEWER).json() == []
    [ended] = site.get("/api/v1/silences", params={"include_ended": True}, headers=VIEWER).json()
    assert ended["id"] == silence["id"]
    assert datetime.fromisoformat(ended["ends_at"]) < ends
    again = site.delete(f"/api/v1/silences/{silence['id']}", headers=OFFICER)
    assert again.status_code == 404
    assert again.json() == {"detail": f"silence {silence['id']}: no such silence running"}


def test_a_silence_may_end_at_a_zoned_time(site: TestClient) -> None:
    ends_at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    local = ends_at.astimezone(timezone(timedelta(hours=7))).isoformat()
    assert local.endswith("+07:00")
    body = {"severities": ["info", "warning"], "ends_at": local, "comment": "calibration"}
    response = site.post("/api/v1/silences", headers=COMMANDER, json=body)
    assert response.status_code == 201
    assert datetime.fromisoformat(response.json()["ends_at"]) == ends_at
    assert response.json()["matchers"]["severities"] == ["info", "warning"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"duration_minutes": 60, "comment": "x"}, "give at least one of"),
        ({"stations": ["A"], "duration_minutes": 60, "comment": "  "}, "say why"),
        (
            {"stations": ["A"], "ends_at": "2020-01-01T00:00:00+07:00", "comment": "x"},
            "is not after",
        ),
    ],
)
def test_a_refused_silence_says_why(site: TestClient, body: dict, says: str) -> None:
    response = site.post("/api/v1/silences", headers=OFFICER, json=body)
    assert response.status_code == 422
    assert says in response.json()["detail"]
    assert site.get("/api/v1/silences", headers=OFFICER).json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"stations": ["A"], "comment": "x"},  # no end
        {"stations": ["A"], "comment": "x", "duration_minutes": 5, "ends_at": "2099-01-01T00:00Z"},
        {"stations": ["A"], "comment": "x", "ends_at": "2099-01-01T00:00:00"},  # no zone
        {"stations": ["A"], "comment": "x", "duration_minutes": 0},
        {"stations": ["A"], "duration_minutes": 5},  # no comment
        {"station": ["A"], "comment": "x", "duration_minutes": 5},  # a typo silences nothing
        {"severities": ["loud"], "comment": "x", "duration_minutes": 5},
        {"stations": ["A"], "comment": "m\x00x", "duration_minutes": 5},
    ],
)
def test_a_malformed_silence_is_422(site: TestClient, body: dict) -> None:
    assert site.post("/api/v1/silences", headers=OFFICER, json=body).status_code == 422
    assert site.get("/api/v1/silences", headers=OFFICER).json() == []


def test_silences_need_an_officer_to_change(site: TestClient, demo: TestClient) -> None:
    body = {"stations": ["A"], "duration_minutes": 5, "comment": "x"}
    assert site.post("/api/v1/silences", headers=VIEWER, json=body).status_code == 403
    assert site.post("/api/v1/silences", json=body).status_code == 401
    assert site.get("/api/v1/silences").status_code == 401
    created = demo.post("/api/v1/silences", json=body, headers=csrf_headers(demo))
    assert created.status_code == 201 and created.json()["created_by"] == "demo"
    assert (
        site.delete(f"/api/v1/silences/{created.json()['id']}", headers=VIEWER).status_code == 403
    )
    assert len(site.get("/api/v1/silences", headers=VIEWER).json()) == 1


# -- notifications -------------------------------------------------------------------------


@pytest.fixture
def outbox(people: Store, now: datetime) -> list[int]:
    """Three notifications, oldest first: sent, failed, pending."""
    rows = [
        {
            "key": f"k{i}",
            "channel": "sms",
            "address": f"+8491234567{i}",
            "contact": "Trực ban",
            "kind": "firing",
            "alarm_ids": [i],
            "text": f"alarm {i}",
            "state": state,
            # every row the same keys: one executemany takes its columns from the first
            "last_error": "gateway said no" if state == "failed" else None,
        }
        for i, state in enumerate(["sent", "failed", "pending"], start=1)
    ]
    with people.transaction() as conn:
        assert enqueue(conn, rows, now) == 3
    return [n["id"] for n in reversed(listing(people))]


def listing(store: Store) -> list[dict[str, Any]]:
    return [vars(n) for n in admin.notifications(store)]


def test_officers_read_the_outbox_newest_first(site: TestClient, outbox: list[int]) -> None:
    response = site.get("/api/v1/notifications", headers=OFFICER)
    assert response.status_code == 200
    body = response.json()
    assert [n["id"] for n in body] == outbox[::-1]
    assert [n["state"] for n in body] == ["pending", "failed", "sent"]
    assert body[1]["address"] == "+84912345672"
    assert body[1]["last_error"] == "gateway said no"
    assert body[1]["alarm_ids"] == [2]
    failed = site.get("/api/v1/notifications", params={"state": "failed"}, headers=OFFICER)
    assert [n["id"] for n in failed.json()] == [outbox[1]]
    limited = site.get("/api/v1/notifications", params={"limit": 1}, headers=OFFICER)
    assert [n["id"] for n in limited.json()] == [outbox[2]]


def test_the_outbox_shows_phone_numbers_to_officers_only(
    site: TestClient, outbox: list[int]
) -> None:
    assert site.get("/api/v1/notifications", headers=VIEWER).status_code == 403
    response = site.get("/api/v1/notifications")
    assert response.status_code == 401
    assert "+8491" not in response.text


@pytest.mark.parametrize(
    ("params", "says"), [({"state": "lost"}, "state 'lost'"), ({"limit": 0}, "")]
)
def test_bad_outbox_queries_are_422(
    site: TestClient, outbox: list[int], params: dict, says: str
) -> None:
    response = site.get("/api/v1/notifications", params=params, headers=OFFICER)
    assert response.status_code == 422
    assert says in str(response.json()["detail"])


def test_an_admin_retries_a_failed_notification(
    site: TestClient, people: Store, outbox: list[int]
) -> None:
    failed = outbox[1]
    response = site.post(f"/api/v1/notifications/{failed}/retry", headers=ADMIN)
    assert response.status_code == 202
    assert response.json() == {"id": failed, "state": "pending"}
    assert {n["id"]: n["state"] for n in listing(people)}[failed] == "pending"
    for nid in (failed, outbox[0], UNKNOWN):  # no longer failed, sent, unknown
        again = site.post(f"/api/v1/notifications/{nid}/retry", headers=ADMIN)
        assert again.status_code == 404
        assert again.json() == {
            "detail": f"notification {nid}: no failed notification with this id"
        }


def test_only_an_admin_retries(
    site: TestClient, demo: TestClient, people: Store, outbox: list[int]
) -> None:
    failed = outbox[1]
    assert site.post(f"/api/v1/notifications/{failed}/retry", headers=COMMANDER).status_code == 403
    assert demo.post(f"/api/v1/notifications/{failed}/retry").status_code == 401
    assert {n["id"]: n["state"] for n in listing(people)}[failed] == "failed"
