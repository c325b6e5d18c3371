"""Sign-in, sessions, CSRF, rate limiting, machine tokens and the audit log, over real HTTP
handling (TestClient) on a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from dashboard import create_app
from radmon import api_tokens, audit
from radmon.config import Settings
from radmon.models import Alarm
from radmon.store import Store
from radmon.store.schema import web_sessions
from radmon.users import add_user, set_disabled, set_password, set_role
from tests.dashboard.conftest import TestClient, csrf_headers, log_in

PASSWORD = "correct horse"


@pytest.fixture
def people(seeded: Store) -> Store:
    for name, role in [("viet", "viewer"), ("olga", "officer"), ("ada", "admin")]:
        add_user(seeded, name, role, PASSWORD)
    return seeded


@pytest.fixture
def site(people: Store, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(people, settings)) as client:
        yield client


@pytest.fixture
def other(people: Store, settings: Settings) -> Iterator[TestClient]:
    """A second browser on the same server."""
    with TestClient(create_app(people, settings)) as client:
        yield client


@pytest.fixture
def alarm_id(people: Store, now: datetime) -> int:
    [stored] = people.record_alarms(
        [
            Alarm(
                station_id="HN-001",
                kind="threshold",
                category="radiological",
                severity="alert",
                opened_at=now - timedelta(minutes=5),
                peak_nsv_h=1500.0,
                baseline_nsv_h=100.0,
            )
        ]
    )
    assert stored.id is not None
    return stored.id


# -- pages and sign-in ----------------------------------------------------------------------


def test_pages_send_strangers_to_the_login_form_and_back(site: TestClient) -> None:
    answer = site.get("/alarms?x=1", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Falarms%3Fx%3D1"
    assert site.get("/api/v1/stations").status_code == 401

    signed_in = log_in(site, "olga", PASSWORD, next_path="/alarms?x=1")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/alarms?x=1"
    cookie = signed_in.headers["set-cookie"]
    assert "radmon_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback: a Secure cookie would never return
    assert site.get("/").status_code == 200
    assert site.get("/api/v1/stations").status_code == 200
    assert "olga" in site.get("/").text


def test_the_session_cookie_is_secure_behind_tls(people: Store, settings: Settings) -> None:
    with TestClient(create_app(people, settings), base_url="https://radmon.example") as client:
        answer = log_in(client, "olga", PASSWORD)
    assert answer.status_code == 303 and "Secure" in answer.headers["set-cookie"]


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_sign_in_never_redirects_off_the_site(site: TestClient, target: str) -> None:
    answer = log_in(site, "olga", PASSWORD, next_path=target)
    assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_wrong_password_shows_the_form_again(site: TestClient) -> None:
    answer = log_in(site, "olga", "wrong password")
    assert answer.status_code == 401 and "radmon_session" not in answer.headers.get(
        "set-cookie", ""
    )
    assert 'name="password"' in answer.text
    assert site.get("/api/v1/stations").status_code == 401


def test_the_login_form_needs_its_csrf_token(site: TestClient) -> None:
    site.get("/login")
    form = {"name": "olga", "password": PASSWORD, "csrf_token": "forged"}
    assert site.post("/login", data=form, follow_redirects=False).status_code == 403
    assert site.get("/api/v1/stations").status_code == 401


def test_logout_ends_the_session_on_the_server(site: TestClient, people: Store) -> None:
    log_in(site, "olga", PASSWORD)
    stolen = site.cookies.get("radmon_session")
    token = csrf_headers(site)["X-CSRF-Token"]
    answer = site.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?signed_out=1"
    assert site.get("/api/v1/stations").status_code == 401
    # the old cookie, replayed, is worth nothing: the session is gone from the database
    site.cookies.set("radmon_session", stolen)
    assert site.get("/api/v1/stations").status_code == 401
    actions = [(e.actor, e.action) for e in audit.entries(people)]
    assert actions[:2] == [("olga", "sign-out"), ("olga", "sign-in")]


def test_disabling_or_changing_a_user_ends_their_sessions(
    site: TestClient, other: TestClient, people: Store
) -> None:
    log_in(site, "olga", PASSWORD)
    log_in(other, "viet", PASSWORD)
    set_disabled(people, "olga")
    assert site.get("/api/v1/stations").status_code == 401
    set_role(people, "viet", "officer")
    assert other.get("/api/v1/stations").status_code == 401
    log_in(other, "viet", PASSWORD)
    set_password(people, "viet", "a new password")
    assert other.get("/api/v1/stations").status_code == 401


def test_an_idle_session_expires(site: TestClient, people: Store, settings: Settings) -> None:
    log_in(site, "olga", PASSWORD)
    assert site.get("/api/v1/stations").status_code == 200
    idle = timedelta(minutes=settings.web.session_idle_minutes + 1)
    with people.transaction() as conn:
        conn.execute(update(web_sessions).values(last_seen_at=datetime.now(UTC) - idle))
    assert site.get("/api/v1/stations").status_code == 401


# -- CSRF on writes -------------------------------------------------------------------------


def test_session_writes_need_the_pages_csrf_token(site: TestClient, alarm_id: int) -> None:
    log_in(site, "olga", PASSWORD)
    url = f"/api/v1/alarms/{alarm_id}/ack"
    missing = site.post(url)
    assert missing.status_code == 403 and "CSRF" in missing.json()["detail"]
    forged = site.post(url, headers={"X-CSRF-Token": "A" * 43})
    assert forged.status_code == 403
    assert site.get(f"/api/v1/alarms/{alarm_id}").json()["acked_by"] is None
    good = site.post(url, headers=csrf_headers(site))
    assert good.status_code == 200 and good.json()["acked_by"] == "olga"


def test_a_token_from_another_browser_is_refused(
    site: TestClient, other: TestClient, alarm_id: int
) -> None:
    log_in(site, "olga", PASSWORD)
    log_in(other, "olga", PASSWORD)
    theirs = csrf_headers(other)
    assert site.post(f"/api/v1/alarms/{alarm_id}/ack", headers=theirs).status_code == 403


def test_cross_site_writes_are_refused_even_with_a_token(site: TestClient, alarm_id: int) -> None:
    log_in(site, "olga", PASSWORD)
    headers = {**csrf_headers(site), "Origin": "https://evil.example"}
    assert site.post(f"/api/v1/alarms/{alarm_id}/ack", headers=headers).status_code == 403
    basic = {"Origin": "https://evil.example"}
    answer = site.post(f"/api/v1/alarms/{alarm_id}/ack", headers=basic, auth=("olga", PASSWORD))
    assert answer.status_code == 403
    # a script with credentials and no browser around it needs no token
    plain = site.post(f"/api/v1/alarms/{alarm_id}/ack", auth=("olga", PASSWORD))
    assert plain.status_code == 200


def test_a_viewer_cannot_acknowledge(site: TestClient, alarm_id: int, people: Store) -> None:
    log_in(site, "viet", PASSWORD)
    answer = site.post(f"/api/v1/alarms/{alarm_id}/ack", headers=csrf_headers(site))
    assert answer.status_code == 403
    assert people.alarm(alarm_id).acked_by is None


# -- rate limiting --------------------------------------------------------------------------


def test_repeated_failures_lock_the_name_out(people: Store, settings: Settings) -> None:
    settings.web.login_failures_per_user = 3
    with TestClient(create_app(people, settings)) as client:
        for _ in range(3):
            assert log_in(client, "olga", "guess").status_code == 401
        locked = log_in(client, "olga", PASSWORD)  # even the right password now waits
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
        basic = client.get("/api/v1/stations", auth=("olga", PASSWORD))
        assert basic.status_code == 429
        assert log_in(client, "viet", PASSWORD).status_code == 303  # other names still work
    refused = [e for e in audit.entries(people) if e.outcome == "refused"]
    assert [e.actor for e in refused] == ["olga"] * 3


def test_failures_per_address_are_bounded(people: Store, settings: Settings) -> None:
    settings.web.login_failures_per_address = 4
    with TestClient(create_app(people, settings)) as client:
        for n in range(4):
            assert log_in(client, f"nobody{n}", "guess").status_code == 401
        assert log_in(client, "olga", PASSWORD).status_code == 429


# -- machine tokens -------------------------------------------------------------------------


def test_api_tokens_read_with_their_role_and_stop_when_revoked(
    site: TestClient, people: Store, alarm_id: int
) -> None:
    token = api_tokens.issue(people, "report-job", "viewer", "ada")
    bearer = {"Authorization": f"Bearer {token}"}
    assert site.get("/api/v1/stations", headers=bearer).status_code == 200
    assert site.post(f"/api/v1/alarms/{alarm_id}/ack", headers=bearer).status_code == 403
    officer = api_tokens.issue(people, "bridge", "officer", "ada")
    acked = site.post(
        f"/api/v1/alarms/{alarm_id}/ack", headers={"Authorization": f"Bearer {officer}"}
    )
    assert acked.status_code == 200 and acked.json()["acked_by"] == "token:bridge"
    api_tokens.revoke(people, "report-job")
    assert site.get("/api/v1/stations", headers=bearer).status_code == 401
    station_token = people.issue_station_token("HN-001")
    station = {"Authorization": f"Bearer {station_token}"}
    assert site.get("/api/v1/stations", headers=station).status_code == 401


# -- the audit log --------------------------------------------------------------------------


def test_every_write_is_audited_with_who_what_and_where(
    site: TestClient, people: Store, alarm_id: int
) -> None:
    log_in(site, "viet", PASSWORD)
    site.post(f"/api/v1/alarms/{alarm_id}/ack", headers=csrf_headers(site))
    site.post(f"/api/v1/alarms/{alarm_id}/clear", auth=("olga", PASSWORD))
    site.post("/api/v1/silences", json={"stations": ["HN-001"]}, auth=("olga", PASSWORD))
    entries = audit.entries(people)
    cleared, refused = entries[1], entries[2]
    assert (cleared.actor, cleared.action, cleared.target, cleared.outcome) == (
        "olga",
        "POST /api/v1/alarms/{alarm_id}/clear",
        f"/api/v1/alarms/{alarm_id}/clear",
        "ok",
    )
    assert cleared.source == "testclient" and cleared.details["via"] == "basic"
    assert (refused.actor, refused.outcome, refused.details["status"]) == ("viet", "refused", 403)
    assert entries[0].action == "POST /api/v1/silences" and entries[0].outcome == "refused"
    assert entries[3].action == "sign-in" and entries[3].actor == "viet"


def test_anonymous_refusals_are_audited_once_a_minute_per_address_and_action(
    site: TestClient, people: Store, alarm_id: int
) -> None:
    """Anyone may send refused writes as fast as they like; each added a row for ever."""
    before = len(audit.entries(people))
    for _ in range(50):
        assert site.post("/whatever").status_code in (404, 405)
        assert site.post(f"/api/v1/alarms/{alarm_id}/ack").status_code == 401
    entries = audit.entries(people)[: len(audit.entries(people)) - before]
    assert sorted(e.action for e in entries) == [
        "POST /api/v1/alarms/{alarm_id}/ack",
        "POST /whatever",
    ]
    assert {e.actor for e in entries} == {"anonymous"}
    site.post(f"/api/v1/alarms/{alarm_id}/clear", auth=("olga", PASSWORD))  # people: each kept
    site.post(f"/api/v1/alarms/{alarm_id}/clear", auth=("olga", PASSWORD))
    assert len(audit.entries(people)) == before + 4


def test_reads_are_not_audited(site: TestClient, people: Store) -> None:
    before = len(audit.entries(people))
    site.get("/api/v1/stations", auth=("viet", PASSWORD))
    assert len(audit.entries(people)) == before


def test_open_reads_hold_only_for_a_request_that_names_this_machine(
    seeded: Store, settings
) -> None:
    """DNS rebinding: a page on evil.example, resolved to 127.0.0.1, is same-origin with the
    demo; it must neither read the demo nor act as its officer."""
    app = create_app(seeded, settings, open_reads=True)
    for base in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"):
        with TestClient(app, base_url=base) as local:
            assert local.get("/api/v1/stations").status_code == 200, base
    with TestClient(app, base_url="http://evil.example:8080") as rebound:
        assert rebound.get("/api/v1/stations").status_code == 401
        assert rebound.get("/api/v1/alarms").status_code == 401


def test_the_next_anonymous_entry_counts_those_left_out() -> None:
    from dashboard.audit import ANONYMOUS_EVERY_S, _AnonymousRefusals

    refusals, key = _AnonymousRefusals(), ("10.0.0.9", "POST /x")
    assert refusals.admit(key, 0.0) == 0
    assert [refusals.admit(key, t) for t in (1.0, 2.0, 3.0)] == [None, None, None]
    assert refusals.admit(("10.0.0.8", "POST /x"), 3.0) == 0  # another address
    assert refusals.admit(key, ANONYMOUS_EVERY_S + 1.0) == 3
