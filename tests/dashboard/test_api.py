"""The JSON API and the map page over a real SQLite store (no browser)."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from dashboard import create_app
from dashboard.geojson import LIVE_MAX_AGE_S
from radmon.config import load_settings
from radmon.models import Reading
from radmon.store import Store
from radmon.store.schema import alarms
from tests.dashboard.conftest import (
    DAY_READINGS,
    DAY_START,
    LOOPBACK,
    XSS_NAME,
    TestClient,
    day_value,
    make_settings,
    seed,
)

LOCAL_DAY = {"start": "2026-01-10T00:00:00+07:00", "end": "2026-01-11T00:00:00+07:00"}


def features(client: TestClient) -> dict[str, dict]:
    response = client.get("/api/v1/stations")
    assert response.status_code == 200
    return {f["id"]: f for f in response.json()["features"]}


# -- health ------------------------------------------------------------------------------------


def test_healthz_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_503_and_api_503_when_database_unreachable(tmp_path) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    settings = load_settings(
        database={"url": "postgresql://radmon@127.0.0.1:1/radmon?connect_timeout=2"}
    )
    store = Store.open(settings)
    try:
        with TestClient(create_app(store, settings, open_reads=True), base_url=LOOPBACK) as client:
            response = client.get("/healthz")
            assert response.status_code == 503
            assert response.json() == {"status": "unavailable"}
            api = client.get("/api/v1/stations")
            assert api.status_code == 503
            assert "database" in api.json()["detail"]
    finally:
        store.close()


# -- stations layer ----------------------------------------------------------------------------


def test_stations_geojson_shape_and_values(client: TestClient, now: datetime) -> None:
    response = client.get("/api/v1/stations")
    assert response.headers["content-type"].startswith("application/geo+json")
    body = json.loads(response.content)
    assert body["type"] == "FeatureCollection"
    by_id = {f["properties"]["station_id"]: f for f in body["features"]}
    assert sorted(by_id) == ["HN-001", "HP-003", "QN-002"]

    hn = by_id["HN-001"]
    assert hn["type"] == "Feature"
    assert hn["geometry"] == {"type": "Point", "coordinates": [105.79, 21.03]}
    props = hn["properties"]
    assert props["name"] == "Hà Nội – Cầu Giấy"
    assert props["dose_rate_nsv_h"] == 95.5
    assert props["time"].endswith("Z")
    assert datetime.fromisoformat(props["time"]) == now - timedelta(minutes=2)
    assert props["online"] is True
    assert props["severity"] is None
    assert props["district"] == "Cầu Giấy"
    assert props["probe_model"] == "RM-10"
    assert props["interval_s"] == 600

    stale = by_id["QN-002"]["properties"]
    assert stale["dose_rate_nsv_h"] == 120.0
    assert stale["online"] is False  # 5 h old with a 10-minute interval

    silent = by_id["HP-003"]["properties"]
    assert silent["dose_rate_nsv_h"] is None
    assert silent["time"] is None
    assert silent["online"] is False


def test_open_alarm_severity_is_reported(client: TestClient, seeded: Store, now: datetime) -> None:
    # Two open episodes of one station, written straight into the table.
    with seeded.engine.begin() as conn:
        conn.execute(
            insert(alarms),
            [
                {
                    "station_id": "HN-001",
                    "kind": "threshold",
                    "category": "radiological",
                    "severity": severity,
                    "state": "active_unack",
                    "opened_at": now - timedelta(minutes=i),
                    "details": {},
                }
                for i, severity in enumerate(("warning", "alert"))
            ],
        )
    layer = features(client)
    assert layer["HN-001"]["properties"]["severity"] == "alert"
    assert layer["HP-003"]["properties"]["severity"] is None


def test_etag_gives_304_until_a_new_reading(client: TestClient, seeded: Store) -> None:
    first = client.get("/api/v1/stations")
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)

    same = client.get("/api/v1/stations", headers={"If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["etag"] == etag
    weak_in_list = client.get("/api/v1/stations", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak_in_list.status_code == 304
    assert client.get("/api/v1/stations", headers={"If-None-Match": '"other"'}).status_code == 200

    seeded.write_readings(
        [Reading(station_id="HP-003", time=datetime.now(UTC), dose_rate_nsv_h=5000.0)]
    )
    time.sleep(LIVE_MAX_AGE_S)  # polling maps share one answer for this long
    changed = client.get("/api/v1/stations", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    props = {f["id"]: f["properties"] for f in changed.json()["features"]}
    assert props["HP-003"]["dose_rate_nsv_h"] == 5000.0
    assert props["HP-003"]["online"] is True


def test_station_metadata_and_404(client: TestClient) -> None:
    response = client.get("/api/v1/stations/HN-001")
    assert response.status_code == 200
    body = response.json()
    assert body["station_id"] == "HN-001"
    assert (body["lat"], body["lon"]) == (21.03, 105.79)
    assert body["district"] == "Cầu Giấy"

    missing = client.get("/api/v1/stations/NOPE-9")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no station 'NOPE-9'"}


# -- readings ------------------------------------------------------------------------------


def test_raw_readings(client: TestClient) -> None:
    response = client.get("/api/v1/stations/HN-001/readings", params=LOCAL_DAY)
    assert response.status_code == 200
    body = response.json()
    assert body["station_id"] == "HN-001"
    assert body["resolution"] == "raw"
    points = body["points"]
    assert len(points) == DAY_READINGS
    assert points[0] == {
        "time": "2026-01-09T17:00:00Z",
        "mean_nsv_h": 50.0,
        "min_nsv_h": 50.0,
        "max_nsv_h": 50.0,
        "count": 1,
        "precip_mm_h": None,
    }
    assert [p["mean_nsv_h"] for p in points] == [day_value(i) for i in range(DAY_READINGS)]


def test_hourly_readings(client: TestClient) -> None:
    response = client.get(
        "/api/v1/stations/HN-001/readings", params={**LOCAL_DAY, "resolution": "hour"}
    )
    assert response.status_code == 200
    points = response.json()["points"]
    assert len(points) == 24
    for hour, point in enumerate(points):
        values = [day_value(6 * hour + k) for k in range(6)]
        assert datetime.fromisoformat(point["time"]) == DAY_START + timedelta(hours=hour)
        assert point["count"] == 6
        assert point["mean_nsv_h"] == pytest.approx(sum(values) / 6)
        assert (point["min_nsv_h"], point["max_nsv_h"]) == (values[0], values[-1])


def test_daily_readings_use_the_local_day(client: TestClient) -> None:
    response = client.get(
        "/api/v1/stations/HN-001/readings", params={**LOCAL_DAY, "resolution": "day"}
    )
    assert response.status_code == 200
    (point,) = response.json()["points"]
    values = [day_value(i) for i in range(DAY_READINGS)]
    assert datetime.fromisoformat(point["time"]) == DAY_START  # local midnight, in UTC
    assert point["count"] == DAY_READINGS
    assert point["mean_nsv_h"] == pytest.approx(sum(values) / len(values))
    assert (point["min_nsv_h"], point["max_nsv_h"]) == (min(values), max(values))


def test_readings_default_to_the_last_24_hours(client: TestClient) -> None:
    body = client.get("/api/v1/stations/HN-001/readings").json()
    assert [p["mean_nsv_h"] for p in body["points"]] == [95.5]
    start, end = (datetime.fromisoformat(body[k]) for k in ("start", "end"))
    assert end - start == timedelta(hours=24)


def test_unencoded_plus_in_the_zone_is_understood(client: TestClient) -> None:
    query = "start=2026-01-10T00:00:00+07:00&end=2026-01-10T01:00:00+07:00"  # '+' means ' '
    url = f"/api/v1/stations/HN-001/readings?{query}"
    response = client.get(url)
    assert response.status_code == 200
    assert len(response.json()["points"]) == 6


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"start": "2026-01-10T00:00:00", "end": "2026-01-11T00:00:00Z"}, "has no time zone"),
        ({"start": "2026-01-10T00:00:00Z", "end": "2026-01-11T00:00:00"}, "has no time zone"),
        ({"start": "yesterday"}, "is not an ISO 8601 time"),
        ({"start": "2026-01-11T00:00:00Z", "end": "2026-01-10T00:00:00Z"}, "must be after start"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "use resolution=hour"),
    ],
)
def test_bad_periods_are_422_with_a_reason(client: TestClient, params: dict, needle: str) -> None:
    response = client.get("/api/v1/stations/HN-001/readings", params=params)
    assert response.status_code == 422
    assert needle in response.json()["detail"]


def test_long_periods_are_fine_at_coarser_resolution(client: TestClient) -> None:
    params = {"start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z", "resolution": "day"}
    response = client.get("/api/v1/stations/HN-001/readings", params=params)
    assert response.status_code == 200
    assert sum(p["count"] for p in response.json()["points"]) == DAY_READINGS


def test_unknown_resolution_is_422(client: TestClient) -> None:
    response = client.get("/api/v1/stations/HN-001/readings", params={"resolution": "minute"})
    assert response.status_code == 422


def test_readings_of_unknown_station_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/stations/NOPE-9/readings", params=LOCAL_DAY)
    assert response.status_code == 404
    assert "NOPE-9" in response.json()["detail"]


# -- statistics ----------------------------------------------------------------------------


def test_stats_per_station(client: TestClient) -> None:
    response = client.get("/api/v1/stats", params=LOCAL_DAY)
    assert response.status_code == 200
    stats = {s["station_id"]: s for s in response.json()}
    assert sorted(stats) == ["HN-001", "HP-003", "QN-002"]
    values = [day_value(i) for i in range(DAY_READINGS)]
    hn = stats["HN-001"]
    assert hn["count"] == DAY_READINGS
    assert hn["mean_nsv_h"] == pytest.approx(sum(values) / len(values))
    assert (hn["min_nsv_h"], hn["max_nsv_h"]) == (min(values), max(values))
    assert hn["expected"] == DAY_READINGS
    assert hn["availability_pct"] == 100.0
    assert stats["HP-003"]["count"] == 0
    assert stats["HP-003"]["mean_nsv_h"] is None

    only = client.get("/api/v1/stats", params={**LOCAL_DAY, "station_id": ["QN-002"]}).json()
    assert [s["station_id"] for s in only] == ["QN-002"]


def test_stats_refuse_naive_times(client: TestClient) -> None:
    response = client.get("/api/v1/stats", params={"start": "2026-01-10T00:00:00"})
    assert response.status_code == 422
    assert "time zone" in response.json()["detail"]


# -- repeated parameters ---------------------------------------------------------------------


def test_a_repeated_one_valued_parameter_is_422_naming_it(client: TestClient) -> None:
    # Starlette would read the last start alone: a period the client never wrote by itself.
    query = "start=2026-01-10T00:00:00Z&start=2026-01-01T00:00:00Z&end=2026-01-11T00:00:00Z"
    response = client.get(f"/api/v1/stats?{query}")
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "start"]
    assert "start takes one value; it was given 2" in error["msg"]

    response = client.get("/api/v1/alarms?state=open&state=all&limit=5&limit=6")
    assert response.status_code == 422
    assert sorted(e["loc"][1] for e in response.json()["detail"]) == ["limit", "state"]


def test_a_list_parameter_may_repeat(client: TestClient) -> None:
    stations = client.get("/api/v1/stats?station_id=QN-002&station_id=HP-003")
    assert stations.status_code == 200
    assert sorted(s["station_id"] for s in stations.json()) == ["HP-003", "QN-002"]
    alarms = client.get("/api/v1/alarms?severity=alert&severity=emergency&state=all")
    assert alarms.status_code == 200


def test_pages_keep_the_last_of_a_repeated_parameter(client: TestClient) -> None:
    # Pages are not the API: a link that repeats ?lang= still opens, in its last language.
    page = client.get("/?lang=vi&lang=en")
    assert page.status_code == 200
    assert '<html lang="en"' in page.text


# -- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/stations",
        "/api/v1/stations/HN-001",
        "/api/v1/stations/HN-001/readings",
        "/api/v1/stats",
    ],
)
def test_reads_need_login_unless_open(closed_client: TestClient, path: str) -> None:
    response = closed_client.get(path)
    assert response.status_code == 401
    assert "users and roles" in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_map_page_needs_login_unless_open(closed_client: TestClient) -> None:
    response = closed_client.get("/?lang=en", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F%3Flang%3Den"
    form = closed_client.get(response.headers["location"])
    assert form.status_code == 200 and form.headers["content-type"].startswith("text/html")
    assert 'name="password"' in form.text
    assert XSS_NAME not in form.text
    assert "radmon-config" not in form.text  # no station data leaks into the page


def test_healthz_needs_no_login(closed_client: TestClient) -> None:
    assert closed_client.get("/healthz").json() == {"status": "ok"}


# -- page -----------------------------------------------------------------------------------


def test_map_page_escapes_station_names(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert XSS_NAME not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text  # the no-script table
    assert "\\u003cscript\\u003ealert(1)" in page.text  # the embedded first layer
    assert "script-src 'self'" in page.headers["content-security-policy"]
    # The API hands the name over as plain JSON text, unchanged.
    assert features(client)["QN-002"]["properties"]["name"] == XSS_NAME


def test_map_page_uses_local_assets_only(client: TestClient) -> None:
    html = client.get("/").text
    for cdn in ("unpkg", "jsdelivr", "cdnjs", "googleapis", "cloudflare"):
        assert cdn not in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert all(s.startswith(("/", "?", "data:")) for s in sources), sources  # nothing remote
    assets = [s for s in sources if s.startswith("/static/")]
    assert sorted(set(assets)) == [
        "/static/app/app.css",
        "/static/app/map.css",
        "/static/app/map.js",
        "/static/leaflet/leaflet.css",
        "/static/leaflet/leaflet.js",
    ]
    for asset in assets:
        assert client.get(asset).status_code == 200
    assert client.get("/static/leaflet/images/marker-icon.png").status_code == 200


def test_map_page_config_for_the_script(client: TestClient, settings) -> None:
    html = client.get("/").text
    raw = re.search(r'<script type="application/json" id="radmon-config">(.*?)</script>', html)
    assert raw
    config = json.loads(raw.group(1))
    assert config["tile_url"] == settings.web.tile_url
    assert config["timezone"] == "Asia/Ho_Chi_Minh"
    assert config["stations_url"] == "/api/v1/stations"
    assert config["initial"]["etag"] == client.get("/api/v1/stations").headers["etag"]
    assert len(config["initial"]["data"]["features"]) == 3


def test_language_default_and_override(client: TestClient, tmp_path, seeded: Store) -> None:
    vietnamese = client.get("/").text
    assert '<html lang="vi">' in vietnamese
    assert "Bản đồ suất liều gamma" in vietnamese
    english = client.get("/?lang=en").text
    assert '<html lang="en">' in english
    assert "Gamma dose-rate map" in english
    assert '<html lang="vi">' in client.get("/?lang=xx").text  # unknown: the site's language

    settings_en = make_settings(tmp_path, site={"language": "en", "name": "Sở KH&CN"})
    with TestClient(
        create_app(seeded, settings_en, open_reads=True), base_url=LOOPBACK
    ) as english_site:
        page = english_site.get("/").text
        assert '<html lang="en">' in page
        assert "Sở KH&amp;CN" in page
        assert '<html lang="vi">' in english_site.get("/?lang=vi").text


def test_openapi_documents_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/healthz",
        "/api/v1/stations",
        "/api/v1/stations/{station_id}",
        "/api/v1/stations/{station_id}/readings",
        "/api/v1/stats",
    ):
        assert path in paths
    assert "/" not in paths


@pytest.mark.postgres
def test_same_answers_on_postgresql(pg_url: str, tmp_path, now: datetime) -> None:
    settings = make_settings(tmp_path)
    settings.database.url = pg_url
    store = Store.open(settings)
    try:
        store.upgrade()
        seed(store, now)
        with TestClient(create_app(store, settings, open_reads=True), base_url=LOOPBACK) as client:
            props = {k: f["properties"] for k, f in features(client).items()}
            assert props["HN-001"]["dose_rate_nsv_h"] == 95.5
            assert props["HN-001"]["time"].endswith("Z")
            assert [p["online"] for p in props.values()] == [True, False, False]
            hourly = client.get(
                "/api/v1/stations/HN-001/readings", params={**LOCAL_DAY, "resolution": "hour"}
            ).json()["points"]
            assert [p["count"] for p in hourly] == [6] * 24
            assert hourly[0]["time"] == "2026-01-09T17:00:00Z"
            daily = client.get(
                "/api/v1/stations/HN-001/readings", params={**LOCAL_DAY, "resolution": "day"}
            ).json()["points"]
            assert [p["count"] for p in daily] == [DAY_READINGS]
    finally:
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/stations/HN-001/readings?end=0001-01-01T00:00:00Z",
        "/api/v1/stations/HN-001/readings?start=0001-01-01T00:00:00%2B07:00&end=0001-01-02T00:00:00Z",
        "/api/v1/stations/HN-001/readings?start=9999-12-31T00:00:00Z&resolution=day",
        "/api/v1/stats?end=0001-01-01T01:00:00Z",
        "/api/v1/stations/%00/readings",
        "/api/v1/alarms?station_id=%00",
        "/api/v1/stats?station_id=%00",
        "/api/v1/alarms?before=2147483648",
        "/api/v1/alarms/2147483648",
    ],
)
def test_what_once_answered_500_is_refused_with_a_reason(client: TestClient, url: str) -> None:
    answer = client.get(url)
    assert answer.status_code == 422, answer.text
