"""The station page without a browser, and rain in the readings API on both backends."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from dashboard import create_app
from radmon.config import Settings
from radmon.models import Alarm, Category, Reading, Severity, Station
from radmon.store import Store
from tests.dashboard.conftest import DAY_START, LOOPBACK, XSS_NAME, TestClient

LOCAL_DAY = {"start": "2026-01-10T00:00:00+07:00", "end": "2026-01-11T00:00:00+07:00"}


def config_of(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="radmon-config">(.*?)</script>', html)
    assert found, "the page carries no config"
    return json.loads(found.group(1))


def test_station_page_shows_the_station_with_its_own_assets(
    client: TestClient, seeded: Store, now: datetime
) -> None:
    seeded.record_alarms(
        [
            Alarm(
                station_id="HN-001",
                kind="step",
                category=Category.RADIOLOGICAL,
                severity=Severity.ALERT,
                opened_at=now - timedelta(minutes=30),
                peak_nsv_h=1250.0,
            )
        ]
    )
    response = client.get("/stations/HN-001?lang=en")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1][:20]
    html = response.text
    for text in ("Hà Nội – Cầu Giấy", "Cầu Giấy", "RM-10", "21.03000, 105.79000", "10 min"):
        assert text in html
    assert "95.5 nSv/h" in html  # the latest reading, two minutes old: online
    assert "online" in html
    assert "1,250.0 nSv/h (1.25 µSv/h)" in html  # the open alarm's peak
    assert 'href="/alarms/' in html
    assert "/static/app/station.js" in html and "/static/app/station.css" in html
    assert "<script>" not in html.replace('<script type="application/json"', "")
    for cdn in ("unpkg", "jsdelivr", "cdnjs", "googleapis", "cloudflare"):
        assert cdn not in html
    config = config_of(html)
    assert config["station_id"] == "HN-001"
    assert config["readings_url"] == "/api/v1/stations/HN-001/readings"
    assert config["max_span_s"] == {"raw": 31 * 86400, "hour": 366 * 86400}
    assert config["timezone"] == "Asia/Ho_Chi_Minh"
    assert config["strings"]["res_hour"] == "Hourly"


def test_a_station_its_edge_reports_offline_is_offline_on_its_page_too(
    seeded: Store, settings: Settings, now: datetime
) -> None:
    # the map said offline, the station's page "online": it judged the reading's age alone
    from types import SimpleNamespace

    from ingest.links import Links

    links = Links(settings.mqtt.topic_prefix)
    links.heard(f"{settings.mqtt.topic_prefix}/HN-001/status", b"offline", None, now)
    ingest = SimpleNamespace(links=links)
    with TestClient(
        create_app(seeded, settings, open_reads=True, ingest=ingest), base_url=LOOPBACK
    ) as client:  # type: ignore[arg-type]
        html = client.get("/stations/HN-001?lang=en").text
        layer = client.get("/api/v1/stations").json()
    assert "offline (reported by its edge)" in html and "latest-state offline" in html
    [feature] = [f for f in layer["features"] if f["id"] == "HN-001"]
    assert feature["properties"]["reported_offline"] is True
    assert config_of(html)["stations_url"] == "/api/v1/stations"


def test_station_page_is_vietnamese_by_default(client: TestClient) -> None:
    html = client.get("/stations/HN-001").text
    assert "Thông tin trạm" in html and "Diễn biến suất liều" in html
    assert "95,5 nSv/h" in html
    assert config_of(html)["strings"]["res_hour"] == "Theo giờ"


def test_hostile_station_name_is_escaped(client: TestClient) -> None:
    html = client.get("/stations/QN-002").text
    assert XSS_NAME not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_unknown_station_is_a_404_page_with_the_csp(client: TestClient) -> None:
    response = client.get("/stations/NOPE-9?lang=en")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "There is no station NOPE-9." in response.text
    assert "radmon-config" not in response.text and "station.js" not in response.text


def test_unknown_station_id_is_escaped_on_the_404_page(client: TestClient) -> None:
    response = client.get("/stations/%3Cimg%20src=x%20onerror=alert(1)%3E")
    assert response.status_code == 404
    assert "<img" not in response.text and "&lt;img src=x onerror=alert(1)&gt;" in response.text


def test_station_page_needs_login_unless_open(closed_client: TestClient) -> None:
    response = closed_client.get("/stations/HN-001", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    assert "Hà Nội" not in response.text


def test_the_page_is_not_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/stations/{station_id}" not in paths


# -- rain in the readings API, on SQLite and PostgreSQL ---------------------------------------


def rain(i: int) -> float | None:
    """Rain from 03:00 to 05:00 local (readings 18–29), none reported before 02:00."""
    if i < 12:
        return None
    return 2.0 + (i % 6) if 18 <= i < 30 else 0.0


@pytest.fixture
def rainy_client(backend_settings: Settings) -> Iterator[TestClient]:
    store = Store.open(backend_settings)
    store.upgrade()
    store.upsert_stations(
        [Station(station_id="HL-9", name="Hạ Long", lat=20.95, lon=107.08, has_rain_gauge=True)]
    )
    store.write_readings(
        [
            Reading(
                station_id="HL-9",
                time=DAY_START + timedelta(minutes=10 * i),
                dose_rate_nsv_h=100.0 + i,
                precip_mm_h=rain(i),
            )
            for i in range(144)
        ]
    )
    try:
        with TestClient(
            create_app(store, backend_settings, open_reads=True), base_url=LOOPBACK
        ) as client:
            yield client
    finally:
        store.close()


def series(client: TestClient, resolution: str) -> list[dict]:
    response = client.get(
        "/api/v1/stations/HL-9/readings", params={**LOCAL_DAY, "resolution": resolution}
    )
    assert response.status_code == 200
    return response.json()["points"]


def test_readings_carry_rain_at_every_resolution(rainy_client: TestClient) -> None:
    raw = series(rainy_client, "raw")
    assert [p["precip_mm_h"] for p in raw] == [rain(i) for i in range(144)]

    hourly = series(rainy_client, "hour")
    assert len(hourly) == 24
    for hour, point in enumerate(hourly):
        given = [v for i in range(6 * hour, 6 * hour + 6) if (v := rain(i)) is not None]
        if not given:
            assert point["precip_mm_h"] is None, hour
        else:
            assert point["precip_mm_h"] == pytest.approx(sum(given) / len(given)), hour
    assert hourly[3]["precip_mm_h"] == pytest.approx(sum(2.0 + k for k in range(6)) / 6)
    assert hourly[0]["precip_mm_h"] is None and hourly[2]["precip_mm_h"] == 0.0

    (day,) = series(rainy_client, "day")
    given = [v for i in range(144) if (v := rain(i)) is not None]
    assert datetime.fromisoformat(day["time"]) == DAY_START.astimezone(UTC)
    assert day["precip_mm_h"] == pytest.approx(sum(given) / len(given))
