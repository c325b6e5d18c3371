"""``GET /api/v1/alarms`` over a real store."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dashboard import create_app
from radmon.models import Alarm, AlarmState, Category, Severity
from radmon.store import Store
from tests.dashboard.conftest import LOOPBACK, TestClient, make_settings, seed

FIELDS = {
    "id",
    "station_id",
    "kind",
    "category",
    "severity",
    "state",
    "opened_at",
    "updated_at",
    "cleared_at",
    "peak_nsv_h",
    "baseline_nsv_h",
    "acked_by",
    "acked_at",
    "details",
    "raised_at",
    "cleared_by",
}


def record(store: Store, now: datetime) -> dict[str, Alarm]:
    """A cleared step at HN-001, an acknowledged threshold alarm there, QN-002 offline."""
    hour = timedelta(hours=1)
    reports = {
        "old": Alarm(
            station_id="HN-001",
            kind="step",
            category=Category.RADIOLOGICAL,
            severity=Severity.WARNING,
            opened_at=now - 5 * hour,
            updated_at=now - 4 * hour,
            cleared_at=now - 4 * hour,
            state=AlarmState.CLEARED_UNACK,
            peak_nsv_h=180.0,
            baseline_nsv_h=95.0,
        ),
        "threshold": Alarm(
            station_id="HN-001",
            kind="threshold",
            category=Category.RADIOLOGICAL,
            severity=Severity.ALERT,
            opened_at=now - hour,
            updated_at=now - timedelta(minutes=2),
            peak_nsv_h=612.5,
            baseline_nsv_h=95.5,
            details={"threshold_nsv_h": 500, "rain": False},
        ),
        "offline": Alarm(
            station_id="QN-002",
            kind="offline",
            category=Category.TECHNICAL,
            severity=Severity.INFO,
            opened_at=now - 2 * hour,
        ),
    }
    stored = dict(zip(reports, store.record_alarms(list(reports.values())), strict=True))
    acked = store.acknowledge_alarm(
        stored["threshold"].id, "Trần Thị B", now - timedelta(minutes=30)
    )
    assert acked is not None
    stored["threshold"] = acked
    return stored


def test_open_alarms_newest_first_with_every_field(
    client: TestClient, seeded: Store, now: datetime
) -> None:
    stored = record(seeded, now)
    response = client.get("/api/v1/alarms")
    assert response.status_code == 200
    body = response.json()
    assert [a["id"] for a in body] == [stored["threshold"].id, stored["offline"].id]
    threshold = body[0]
    assert set(threshold) == FIELDS
    assert threshold["station_id"] == "HN-001"
    assert threshold["kind"] == "threshold"
    assert threshold["category"] == "radiological"
    assert threshold["severity"] == "alert"
    assert threshold["state"] == "active_ack"
    assert threshold["acked_by"] == "Trần Thị B"
    assert threshold["peak_nsv_h"] == 612.5
    assert threshold["baseline_nsv_h"] == 95.5
    assert threshold["details"] == {"threshold_nsv_h": 500, "rain": False}
    assert threshold["cleared_at"] is None
    assert threshold["opened_at"].endswith("Z")
    assert datetime.fromisoformat(threshold["opened_at"]) == now - timedelta(hours=1)
    assert datetime.fromisoformat(threshold["acked_at"]) == now - timedelta(minutes=30)
    assert body[1]["category"] == "technical" and body[1]["state"] == "active_unack"


def test_all_alarms_station_filter_and_limit(
    client: TestClient, seeded: Store, now: datetime
) -> None:
    stored = record(seeded, now)
    every = client.get("/api/v1/alarms", params={"state": "all"}).json()
    assert [a["id"] for a in every] == [
        stored["threshold"].id,
        stored["offline"].id,
        stored["old"].id,
    ]
    assert every[2]["state"] == "cleared_unack"
    assert datetime.fromisoformat(every[2]["cleared_at"]) == now - timedelta(hours=4)
    station = client.get("/api/v1/alarms", params={"state": "all", "station_id": "HN-001"})
    assert [a["id"] for a in station.json()] == [stored["threshold"].id, stored["old"].id]
    limited = client.get("/api/v1/alarms", params={"state": "all", "limit": 1})
    assert [a["id"] for a in limited.json()] == [stored["threshold"].id]
    assert client.get("/api/v1/alarms", params={"station_id": "HP-003"}).json() == []


def test_no_alarms_is_an_empty_list(client: TestClient) -> None:
    response = client.get("/api/v1/alarms")
    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.parametrize(
    "params", [{"state": "closed"}, {"limit": 0}, {"limit": 10_001}, {"limit": "many"}]
)
def test_bad_parameters_are_refused(client: TestClient, params: dict) -> None:
    response = client.get("/api/v1/alarms", params=params)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["query", next(iter(params))]


def test_alarms_need_login_unless_open(
    closed_client: TestClient, seeded: Store, now: datetime
) -> None:
    record(seeded, now)
    response = closed_client.get("/api/v1/alarms", params={"state": "all"})
    assert response.status_code == 401
    assert "users and roles" in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "HN-001" not in response.text


def test_openapi_documents_the_alarm_listing(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/api/v1/alarms"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert set(params) == {
        "state",
        "station_id",
        "severity",
        "category",
        "acknowledged",
        "limit",
        "before",
        "format",
        "if-none-match",
    }
    assert params["state"]["schema"]["enum"] == ["open", "all"]
    assert params["state"]["schema"]["default"] == "open"
    assert params["limit"]["schema"]["minimum"] == 1
    assert "401" in operation["responses"]
    listed = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["type"] == "array"
    item = spec["components"]["schemas"][listed["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(item["properties"]) == FIELDS


@pytest.mark.postgres
def test_same_answers_on_postgresql(pg_url: str, tmp_path, now: datetime) -> None:
    settings = make_settings(tmp_path)
    settings.database.url = pg_url
    store = Store.open(settings)
    try:
        store.upgrade()
        seed(store, now)
        stored = record(store, now)
        with TestClient(create_app(store, settings, open_reads=True), base_url=LOOPBACK) as client:
            body = client.get("/api/v1/alarms", params={"state": "all"}).json()
        assert [a["id"] for a in body] == [
            stored["threshold"].id,
            stored["offline"].id,
            stored["old"].id,
        ]
        assert body[0]["details"] == {"threshold_nsv_h": 500, "rain": False}
        assert body[0]["state"] == "active_ack"
    finally:
        store.close()
