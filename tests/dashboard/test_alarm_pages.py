"""The alarm board and the alarm page, rendered by the server over a real SQLite store."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher

from dashboard import create_app
from radmon import users
from radmon.config import Settings
from radmon.models import Alarm, Category, Severity
from radmon.store import Store
from radmon.users import add_user
from tests.dashboard.conftest import XSS_NAME, TestClient, csrf_headers
from tests.dashboard.test_alarm_lifecycle_api import OFFICER, PASSWORD, VIEWER

HOSTILE_COMMENT = "<script>alert('comment')</script> & <b>bold</b>"


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def alarm(station_id: str, severity: Severity, opened_at: datetime, **fields) -> Alarm:
    return Alarm(
        station_id=station_id,
        kind=fields.pop("kind", "threshold"),
        category=fields.pop("category", Category.RADIOLOGICAL),
        severity=severity,
        opened_at=opened_at,
        **fields,
    )


@pytest.fixture
def alarms(seeded: Store, now: datetime) -> dict[str, int]:
    """Four open alarms of every severity (the hostile station's is the emergency) and a
    cleared one; a warning newer than the alert, to show severity comes before time."""
    details = {
        "opened": {"test": "step", "reading_nsv_h": 480.0, "neighbours_rising": ["HP-003"]},
        "latest": {"test": "step", "reading_nsv_h": 612.5, "neighbours_rising": []},
        "last_abnormal_at": (now - timedelta(minutes=5)).isoformat(),
    }
    stored = seeded.record_alarms(
        [
            alarm(
                "HN-001",
                Severity.ALERT,
                now - timedelta(hours=3),
                kind="step",
                peak_nsv_h=612.5,
                baseline_nsv_h=98.0,
                details=details,
            ),
            alarm("QN-002", Severity.EMERGENCY, now - timedelta(hours=5), peak_nsv_h=150_000.0),
            alarm(
                "HP-003",
                Severity.WARNING,
                now - timedelta(hours=1),
                kind="offline",
                category=Category.TECHNICAL,
            ),
            alarm(
                "HP-003",
                Severity.INFO,
                now - timedelta(minutes=30),
                kind="noise_change",
                category=Category.TECHNICAL,
            ),
            alarm(
                "HN-001",
                Severity.WARNING,
                now - timedelta(days=2),
                kind="stuck",
                category=Category.TECHNICAL,
                cleared_at=now - timedelta(days=1),
                state="cleared_unack",
            ),
        ]
    )
    names = ["alert", "emergency", "warning", "info", "cleared"]
    return {name: a.id for name, a in zip(names, stored, strict=True)}  # type: ignore[misc]


def row_ids(html: str) -> list[int]:
    tbody = html.split('<tbody id="alarm-rows">', 1)[1].split("</tbody>", 1)[0]
    return [int(i) for i in re.findall(r'data-alarm-id="(\d+)"', tbody)]


def page_config(html: str) -> dict:
    raw = html.split('<script type="application/json" id="radmon-config">', 1)[1]
    return json.loads(raw.split("</script>", 1)[0])


def test_the_board_lists_open_alarms_most_severe_first(
    client: TestClient, alarms: dict[str, int]
) -> None:
    response = client.get("/alarms")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    html = response.text
    expected = [alarms[k] for k in ("emergency", "alert", "warning", "info")]
    assert row_ids(html) == expected
    assert '<html lang="vi">' in html and "Bảng báo động" in html
    assert 'href="/stations/HN-001"' in html and f'href="/alarms/{alarms["alert"]}"' in html
    assert "chưa xác nhận" in html and "vượt ngưỡng" in html and "mất kết nối" in html
    config = page_config(html)
    assert config["poll_ms"] == 5000 and config["can_act"] is True
    assert config["alarms_url"] == "/api/v1/alarms" and config["initial"]["state"] == "open"
    assert {a["id"] for a in config["initial"]["data"]} == set(expected)
    assert config["max_id"] == max(expected)
    assert config["stations"]["QN-002"] == XSS_NAME
    assert '<script src="/static/app/alarms.js" defer></script>' in html
    assert client.get("/static/app/alarms.js").status_code == 200
    assert client.get("/static/app/alarms.css").status_code == 200


def test_the_board_filters_by_query(client: TestClient, alarms: dict[str, int]) -> None:
    assert row_ids(client.get("/alarms?severity=warning").text) == [alarms["warning"]]
    technical = row_ids(client.get("/alarms?category=technical").text)
    assert technical == [alarms["warning"], alarms["info"]]
    assert row_ids(client.get("/alarms?station=HN-001").text) == [alarms["alert"]]
    with_cleared = client.get("/alarms?cleared=1&station=HN-001").text
    assert row_ids(with_cleared) == [alarms["alert"], alarms["cleared"]]
    assert page_config(with_cleared)["initial"]["state"] == "all"
    assert page_config(with_cleared)["filters"]["cleared"] is True
    # unknown values are ignored, not errors
    assert len(row_ids(client.get("/alarms?severity=bogus&station=XX-9").text)) == 4


def test_the_board_shows_who_acknowledged_and_hides_unacknowledged_only(
    client: TestClient, alarms: dict[str, int]
) -> None:
    response = client.post(
        f"/api/v1/alarms/{alarms['alert']}/ack", headers=csrf_headers(client), json={}
    )
    assert response.status_code == 200
    html = client.get("/alarms").text
    assert "đã xác nhận bởi demo" in html
    assert alarms["alert"] not in row_ids(client.get("/alarms?unacked=1").text)
    english = client.get("/alarms?lang=en").text
    assert "Alarm board" in english and "acknowledged by demo" in english


def test_station_names_are_escaped_on_the_board(client: TestClient, alarms: dict[str, int]) -> None:
    html = client.get("/alarms").text
    assert XSS_NAME not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_alarm_page_explains_and_keeps_the_history(
    client: TestClient, alarms: dict[str, int]
) -> None:
    alarm_id = alarms["alert"]
    headers = csrf_headers(client)
    assert (
        client.post(
            f"/api/v1/alarms/{alarm_id}/ack",
            headers=headers,
            json={"comment": "đang đến hiện trường"},
        ).status_code
        == 200
    )
    response = client.get(f"/alarms/{alarm_id}")
    assert response.status_code == 200
    html = response.text
    assert f"Báo động #{alarm_id}" in html and "Hà Nội – Cầu Giấy" in html
    assert 'href="/stations/HN-001"' in html
    assert "tăng bậc" in html  # the kind in words
    # the explanation: the detector's numbers at opening and now
    assert "Khi bắt đầu" in html and "Số đọc (nSv/h)" in html and "480" in html and "612,5" in html
    assert "Trạm lân cận cùng tăng" in html and "HP-003" in html
    assert "× 6,25" in html  # peak over baseline, with the Vietnamese decimal comma
    assert "612.5 nSv/h" in client.get(f"/alarms/{alarm_id}?lang=en").text
    # the history: opened by the system, acknowledged by demo with the note
    history = html.split('<tbody id="history-rows">', 1)[1].split("</tbody>", 1)[0]
    assert history.count("<tr") == 2
    assert "mở báo động" in history and "hệ thống" in history
    assert "xác nhận" in history and "demo" in history and "đang đến hiện trường" in history
    assert 'id="alarm-actions"' in html and 'data-action="comment"' in html
    assert re.search(r'data-action="ack"\s+hidden', html)  # acknowledged already
    assert page_config(html)["alarm"]["acked_by"] == "demo"
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_a_hostile_comment_stays_text(client: TestClient, alarms: dict[str, int]) -> None:
    alarm_id = alarms["emergency"]
    response = client.post(
        f"/api/v1/alarms/{alarm_id}/comments",
        headers=csrf_headers(client),
        json={"text": HOSTILE_COMMENT},
    )
    assert response.status_code == 201
    html = client.get(f"/alarms/{alarm_id}").text
    assert "<script>alert('comment')" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#39;comment&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold" in html
    assert XSS_NAME not in html  # the station's name, too


@pytest.mark.parametrize("missing", ["987654", "0", "abc", str(2**63), "-1"])
def test_an_unknown_alarm_is_a_404_page(client: TestClient, missing: str) -> None:
    response = client.get(f"/alarms/{missing}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert f"Không có báo động #{missing}." in response.text
    assert 'href="/alarms"' in response.text


def test_pages_ask_for_a_login_on_a_closed_site(closed_client: TestClient) -> None:
    for path in ("/alarms", "/alarms/1"):
        response = closed_client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


@pytest.fixture
def site(seeded: Store, settings: Settings) -> Iterator[TestClient]:
    add_user(seeded, "viet", "viewer", PASSWORD)
    add_user(seeded, "olga", "officer", PASSWORD)
    with TestClient(create_app(seeded, settings)) as client:
        yield client


def test_actions_only_for_officers_and_above(site: TestClient, alarms: dict[str, int]) -> None:
    alarm_id = alarms["alert"]
    seen_by_viewer = site.get(f"/alarms/{alarm_id}", headers=VIEWER).text
    assert 'id="alarm-actions"' not in seen_by_viewer
    assert page_config(seen_by_viewer)["can_act"] is False
    assert page_config(site.get("/alarms", headers=VIEWER).text)["can_act"] is False
    seen_by_officer = site.get(f"/alarms/{alarm_id}", headers=OFFICER).text
    assert 'id="alarm-actions"' in seen_by_officer
    assert page_config(site.get("/alarms", headers=OFFICER).text)["can_act"] is True


def test_the_sms_short_link_opens_the_alarm_page(
    client: TestClient, alarms: dict[str, int]
) -> None:
    alarm_id = alarms["emergency"]
    response = client.get(f"/a/{alarm_id}", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == f"/alarms/{alarm_id}"
    followed = client.get(f"/a/{alarm_id}")
    assert followed.status_code == 200 and f"Báo động #{alarm_id}" in followed.text
