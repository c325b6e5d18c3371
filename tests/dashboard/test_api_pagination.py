"""Alarm filters and pages, ETags, CSV answers and hostile query strings, over a real store."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashboard import create_app
from radmon.models import Alarm, Category, Severity, Station
from radmon.store import Store
from radmon.store.schema import alarms, readings
from tests.dashboard.conftest import (
    DAY_READINGS,
    LOOPBACK,
    TestClient,
    day_value,
    make_settings,
    seed,
)

LOCAL_DAY = {"start": "2026-01-10T00:00:00+07:00", "end": "2026-01-11T00:00:00+07:00"}
CONTRACT_ALARM_COLUMNS = [
    "station_id",
    "start",
    "end",
    "kind",
    "category",
    "severity",
    "peak_nsv_h",
    "baseline_nsv_h",
]
SQL = ["' OR 1=1 --", "HN-001' OR '1'='1", "x'; DROP TABLE alarms; --", '" OR ""="']
LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


def episodes(now: datetime, n: int = 12) -> list[Alarm]:
    """*n* alarms, two to each opening minute (so order needs the id), of mixed kinds."""
    severities = list(Severity)
    return [
        Alarm(
            station_id="HN-001" if i % 3 else "QN-002",
            kind=f"kind-{i}",
            category=Category.TECHNICAL if i % 4 == 0 else Category.RADIOLOGICAL,
            severity=severities[i % len(severities)],
            opened_at=now - timedelta(minutes=10 * (i // 2)),
            peak_nsv_h=100.0 + i + 0.25,
            baseline_nsv_h=90.5,
            details={"last_abnormal_at": "2026-01-10T01:00:00Z"},
        )
        for i in range(n)
    ]


def record(store: Store, now: datetime, n: int = 12) -> list[Alarm]:
    return store.record_alarms(episodes(now, n))


def ids(response) -> list[int]:
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()]


def next_page(response) -> str | None:
    link = response.headers.get("link")
    if link is None:
        return None
    match = LINK.match(link)
    assert match, link
    return match["url"]


def walk(client: TestClient, params: dict, between=None) -> tuple[list[int], int]:
    """Every page from the first by the Link headers; *between* runs after each page."""
    response = client.get("/api/v1/alarms", params=params)
    seen, pages = ids(response), 1
    while url := next_page(response):
        if between:
            between(pages)
        response = client.get(url)
        seen += ids(response)
        pages += 1
    return seen, pages


def rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    return list(csv.DictReader(io.StringIO(response.text)))


def number(text: str) -> float | None:
    return float(text) if text else None


def when(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# -- filters -----------------------------------------------------------------------------


def test_filters(client: TestClient, seeded: Store, now: datetime) -> None:
    stored = record(seeded, now)
    seeded.acknowledge_alarm(stored[1].id, "officer1", now)
    seeded.clear_alarm(stored[2].id, "officer1", now)
    every = seeded.alarms("all")  # newest first, as the API lists them

    severe = client.get(
        "/api/v1/alarms", params={"state": "all", "severity": ["alert", "emergency"]}
    )
    assert ids(severe) == [
        a.id for a in every if a.severity in (Severity.ALERT, Severity.EMERGENCY)
    ]
    assert len(ids(severe)) == 6
    technical = client.get("/api/v1/alarms", params={"state": "all", "category": "technical"})
    assert ids(technical) == [a.id for a in every if a.category is Category.TECHNICAL]
    acked = client.get("/api/v1/alarms", params={"state": "all", "acknowledged": "true"})
    assert ids(acked) == [stored[1].id]
    not_acked = client.get("/api/v1/alarms", params={"acknowledged": "false"})
    assert stored[1].id not in ids(not_acked)
    assert stored[2].id not in ids(not_acked)  # cleared: not open
    assert len(ids(not_acked)) == len(every) - 2
    combined = client.get(
        "/api/v1/alarms",
        params={"station_id": "QN-002", "category": "radiological", "severity": "warning"},
    )
    assert ids(combined) == [
        a.id
        for a in seeded.alarms("open", station_id="QN-002")
        if a.category is Category.RADIOLOGICAL and a.severity is Severity.WARNING
    ]
    assert ids(combined)
    for bad in ({"severity": "loud"}, {"category": "other"}, {"acknowledged": "maybe"}):
        refused = client.get("/api/v1/alarms", params=bad)
        assert refused.status_code == 422
        [problem] = refused.json()["detail"]
        assert problem["loc"][:2] == ["query", next(iter(bad))]


# -- pages -------------------------------------------------------------------------------


def test_pages_give_every_alarm_once_in_order(
    client: TestClient, seeded: Store, now: datetime
) -> None:
    stored = record(seeded, now)
    expected = ids(client.get("/api/v1/alarms", params={"state": "all"}))
    # newest opening first; two alarms opened at one time go by id, the newer first
    assert expected == [a.id for a in sorted(stored, key=lambda a: (a.opened_at, a.id))][::-1]
    for limit in (1, 5, 6, 11, 12, 13):
        seen, pages = walk(client, {"state": "all", "limit": limit})
        assert seen == expected
        assert pages == -(-12 // limit)  # no empty last page: Link only when there is more


def test_pages_survive_new_alarms_and_a_cleared_cursor(
    client: TestClient, seeded: Store, now: datetime
) -> None:
    stored = record(seeded, now)
    expected = ids(client.get("/api/v1/alarms"))
    by_id = {a.id: a for a in stored}

    def meanwhile(page: int) -> None:
        # a new episode opens, and the alarm the next page starts after is cleared
        seeded.record_alarms(
            [
                Alarm(
                    station_id="HP-003",
                    kind=f"new-{page}",
                    category=Category.RADIOLOGICAL,
                    severity=Severity.EMERGENCY,
                    opened_at=now + timedelta(minutes=page),
                )
            ]
        )
        cursor = expected[page * 4 - 1]
        seeded.clear_alarm(cursor, "officer1", now)

    seen, pages = walk(client, {"limit": 4}, between=meanwhile)
    assert pages == 3
    assert len(seen) == len(set(seen))
    assert seen == expected
    assert set(seen) <= set(by_id)  # the newer ones belong to a first page asked for later


def test_link_keeps_the_filters_and_names_the_last_id(
    client: TestClient, seeded: Store, now: datetime
) -> None:
    record(seeded, now)
    params = {"state": "all", "severity": ["info", "alert"], "limit": 2}
    first = client.get("/api/v1/alarms", params=params)
    url = next_page(first)
    assert url is not None
    assert url.startswith(f"{LOOPBACK}/api/v1/alarms?")
    query = url.split("?", 1)[1].split("&")
    assert sorted(query) == sorted(
        ["state=all", "severity=info", "severity=alert", "limit=2", f"before={ids(first)[-1]}"]
    )
    last = client.get("/api/v1/alarms", params={"state": "all", "limit": 100})
    assert "link" not in last.headers


def test_an_unknown_cursor_is_refused(client: TestClient, seeded: Store, now: datetime) -> None:
    record(seeded, now)
    response = client.get("/api/v1/alarms", params={"before": 987654})
    assert response.status_code == 422
    assert response.json() == {"detail": "before=987654: no such alarm"}
    assert client.get("/api/v1/alarms", params={"before": 0}).status_code == 422


# -- ETag --------------------------------------------------------------------------------


def test_etag_304_until_an_alarm_changes(client: TestClient, seeded: Store, now: datetime) -> None:
    stored = record(seeded, now)
    first = client.get("/api/v1/alarms")
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert first.headers["cache-control"] == "no-cache"

    same = client.get("/api/v1/alarms", headers={"If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["etag"] == etag
    assert client.get("/api/v1/alarms", headers={"If-None-Match": f"W/{etag}"}).status_code == 304
    assert client.get("/api/v1/alarms", headers={"If-None-Match": '"x"'}).status_code == 200
    # another representation, another tag
    as_csv = client.get("/api/v1/alarms", params={"format": "csv"})
    assert as_csv.headers["etag"] != etag
    assert (
        client.get(
            "/api/v1/alarms", params={"format": "csv"}, headers={"If-None-Match": etag}
        ).status_code
        == 200
    )

    seeded.acknowledge_alarm(stored[0].id, "officer1", now)
    acked = client.get("/api/v1/alarms", headers={"If-None-Match": etag})
    assert acked.status_code == 200
    assert acked.headers["etag"] != etag
    assert {a["id"]: a["state"] for a in acked.json()}[stored[0].id] == "active_ack"

    etag = acked.headers["etag"]
    seeded.record_alarms(episodes(now + timedelta(hours=1), 1))
    assert client.get("/api/v1/alarms", headers={"If-None-Match": etag}).status_code == 200


def test_etag_of_a_page_keeps_its_link(client: TestClient, seeded: Store, now: datetime) -> None:
    record(seeded, now)
    first = client.get("/api/v1/alarms", params={"limit": 3})
    again = client.get(
        "/api/v1/alarms", params={"limit": 3}, headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.headers["link"] == first.headers["link"]


# -- CSV ---------------------------------------------------------------------------------


def test_alarm_csv_matches_the_json(client: TestClient, seeded: Store, now: datetime) -> None:
    stored = record(seeded, now)
    seeded.acknowledge_alarm(stored[3].id, "officer1", now)
    seeded.clear_alarm(stored[3].id, "officer1", now + timedelta(minutes=1))
    as_json = client.get("/api/v1/alarms", params={"state": "all"}).json()
    response = client.get("/api/v1/alarms", params={"state": "all", "format": "csv"})
    table = rows(response)
    assert response.headers["content-disposition"] == 'attachment; filename="alarms-all.csv"'
    header = response.text.splitlines()[0].split(",")
    assert header[:8] == CONTRACT_ALARM_COLUMNS
    assert header[8:10] == ["id", "state"]
    assert [int(r["id"]) for r in table] == [a["id"] for a in as_json]
    for row, alarm in zip(table, as_json, strict=True):
        assert row["station_id"] == alarm["station_id"]
        assert when(row["start"]) == when(alarm["opened_at"])
        for field in ("kind", "category", "severity", "state"):
            assert row[field] == alarm[field]
        assert number(row["peak_nsv_h"]) == alarm["peak_nsv_h"]
        assert number(row["baseline_nsv_h"]) == alarm["baseline_nsv_h"]
        assert (row["acked_by"] or None) == alarm["acked_by"]
        assert when(row["acked_at"]) == when(alarm["acked_at"])
        assert when(row["cleared_at"]) == when(alarm["cleared_at"])
        # CONTRACTS: end is the last reading still in alarm, empty while the alarm is open
        if alarm["state"].startswith("active"):
            assert row["end"] == ""
        else:
            assert row["end"] == "2026-01-10T01:00:00Z"
    names = {r["station_id"]: r["station_name"] for r in table}
    assert names["HN-001"] == "Hà Nội – Cầu Giấy"


def test_raw_readings_csv_is_the_detection_input(client: TestClient) -> None:
    params = {**LOCAL_DAY, "format": "csv"}
    response = client.get("/api/v1/stations/HN-001/readings", params=params)
    table = rows(response)
    assert response.text.splitlines()[0] == "time,station_id,dose_rate_nsv_h"
    assert response.headers["content-disposition"] == (
        'attachment; filename="readings-HN-001-raw-20260109T170000Z-20260110T170000Z.csv"'
    )
    points = client.get("/api/v1/stations/HN-001/readings", params=LOCAL_DAY).json()["points"]
    assert len(table) == len(points) == DAY_READINGS
    for row, point in zip(table, points, strict=True):
        assert row["time"] == point["time"]
        assert row["station_id"] == "HN-001"
        assert float(row["dose_rate_nsv_h"]) == point["mean_nsv_h"]
    assert table[0]["time"] == "2026-01-09T17:00:00Z"
    assert [float(r["dose_rate_nsv_h"]) for r in table] == [
        day_value(i) for i in range(DAY_READINGS)
    ]


def test_hourly_readings_csv_matches_the_json(client: TestClient) -> None:
    params = {**LOCAL_DAY, "resolution": "hour"}
    points = client.get("/api/v1/stations/HN-001/readings", params=params).json()["points"]
    response = client.get("/api/v1/stations/HN-001/readings", params={**params, "format": "csv"})
    table = rows(response)
    assert list(table[0]) == ["time", "station_id", "mean_nsv_h", "min_nsv_h", "max_nsv_h", "count"]
    assert len(table) == len(points) == 24
    for row, point in zip(table, points, strict=True):
        assert when(row["time"]) == when(point["time"])
        for field in ("mean_nsv_h", "min_nsv_h", "max_nsv_h"):
            assert float(row[field]) == point[field]
        assert int(row["count"]) == point["count"]


def test_stats_csv_matches_the_json(client: TestClient) -> None:
    as_json = client.get("/api/v1/stats", params=LOCAL_DAY).json()
    response = client.get("/api/v1/stats", params={**LOCAL_DAY, "format": "csv"})
    table = rows(response)
    assert response.headers["content-disposition"] == (
        'attachment; filename="stats-20260109T170000Z-20260110T170000Z.csv"'
    )
    assert [r["station_id"] for r in table] == [s["station_id"] for s in as_json]
    for row, stats in zip(table, as_json, strict=True):
        assert int(row["count"]) == stats["count"]
        assert int(row["expected"]) == stats["expected"]
        for field in ("mean_nsv_h", "min_nsv_h", "max_nsv_h", "availability_pct"):
            assert number(row[field]) == stats[field]
    assert {r["station_id"]: r["name"] for r in table}["HP-003"] == "Hải Phòng"


def test_openapi_documents_csv_and_the_new_parameters(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/alarms", "/api/v1/stations/{station_id}/readings", "/api/v1/stats"):
        operation = paths[path]["get"]
        params = {p["name"]: p for p in operation["parameters"]}
        assert params["format"]["schema"]["enum"] == ["json", "csv"]
        assert "text/csv" in operation["responses"]["200"]["content"]
        assert "application/json" in operation["responses"]["200"]["content"]
    listing = paths["/api/v1/alarms"]["get"]
    params = {p["name"] for p in listing["parameters"]}
    assert {"severity", "category", "acknowledged", "before", "limit"} <= params
    assert set(listing["responses"]["200"]["headers"]) == {"ETag", "Link"}
    assert "304" in listing["responses"]
    series = {
        p["name"] for p in paths["/api/v1/stations/{station_id}/readings"]["get"]["parameters"]
    }
    assert {"limit", "after"} <= series


# -- formula injection ---------------------------------------------------------------------

HOSTILE = {
    "XL-001": '=HYPERLINK("http://example.invalid","click")',
    "XL-002": "+1+cmd|' /C calc'!A0",
    "XL-003": "-2+3",
    "XL-004": "@SUM(1+1)*cmd|' /C calc'!A0",
    "XL-005": "\t=1+1",
    "XL-006": "Trạm = an toàn",  # '=' inside: a plain name
}


def test_formula_like_text_is_quoted_in_every_csv(
    client: TestClient, seeded: Store, now: datetime
) -> None:
    seeded.upsert_stations(
        [Station(station_id=sid, name=name, lat=21.0, lon=105.0) for sid, name in HOSTILE.items()]
    )
    seeded.record_alarms(
        [
            Alarm(
                station_id=sid,
                kind="=cmd|' /C calc'!A0",
                category=Category.TECHNICAL,
                severity=Severity.INFO,
                opened_at=now,
            )
            for sid in HOSTILE
        ]
    )
    stats = {
        r["station_id"]: r for r in rows(client.get("/api/v1/stats", params={"format": "csv"}))
    }
    listed = rows(client.get("/api/v1/alarms", params={"format": "csv"}))
    alarm_names = {r["station_id"]: r["station_name"] for r in listed}
    for sid, name in HOSTILE.items():
        expected = name if sid == "XL-006" else "'" + name
        assert stats[sid]["name"] == expected
        assert alarm_names[sid] == expected
    assert {r["kind"] for r in listed} == {"'=cmd|' /C calc'!A0"}
    # the JSON keeps every name exactly as stored
    assert {a["kind"] for a in client.get("/api/v1/alarms").json()} == {"=cmd|' /C calc'!A0"}
    layer = client.get("/api/v1/stations").json()["features"]
    assert {f["id"]: f["properties"]["name"] for f in layer}["XL-001"] == HOSTILE["XL-001"]
    # numbers are numbers: a negative value would not be quoted (none is stored here)
    assert all(not r["count"].startswith("'") for r in stats.values())


# -- readings pages ------------------------------------------------------------------------


def test_raw_readings_in_pages(client: TestClient) -> None:
    url = "/api/v1/stations/HN-001/readings"
    response = client.get(url, params={**LOCAL_DAY, "limit": 50})
    pages = [response.json()["points"]]
    while link := next_page(response):
        assert "after=" in link and "start=" in link and "end=" in link
        response = client.get(link)
        assert response.status_code == 200
        pages.append(response.json()["points"])
    assert [len(p) for p in pages] == [50, 50, 44]
    assert [p["mean_nsv_h"] for page in pages for p in page] == [
        day_value(i) for i in range(DAY_READINGS)
    ]
    assert "link" not in client.get(url, params={**LOCAL_DAY, "limit": DAY_READINGS}).headers


def test_hourly_pages_repeat_no_bucket(client: TestClient) -> None:
    url = "/api/v1/stations/HN-001/readings"
    params = {**LOCAL_DAY, "resolution": "hour", "limit": 10}
    response = client.get(url, params=params)
    times = [p["time"] for p in response.json()["points"]]
    while link := next_page(response):
        response = client.get(link)
        times += [p["time"] for p in response.json()["points"]]
    assert len(times) == len(set(times)) == 24
    assert times == sorted(times)


def test_readings_cursor_is_checked(client: TestClient) -> None:
    url = "/api/v1/stations/HN-001/readings"
    naive = client.get(url, params={**LOCAL_DAY, "after": "2026-01-10T01:00:00"})
    assert naive.status_code == 422
    assert "after=" in naive.json()["detail"]
    later = client.get(url, params={**LOCAL_DAY, "after": "2026-01-10T16:50:00Z"})
    assert later.json()["points"] == []
    assert client.get(url, params={"limit": 0}).status_code == 422


# -- hostile query strings -------------------------------------------------------------------


@pytest.mark.parametrize("text", SQL)
def test_sql_in_query_strings_finds_nothing_and_harms_nothing(
    client: TestClient, seeded: Store, now: datetime, text: str
) -> None:
    record(seeded, now)
    before = counts(seeded)
    for state in ("open", "all"):
        assert (
            client.get("/api/v1/alarms", params={"state": state, "station_id": text}).json() == []
        )
    assert client.get("/api/v1/stats", params={"station_id": text}).json() == []
    for path in (f"/api/v1/stations/{text}", f"/api/v1/stations/{text}/readings"):
        assert client.get(path).status_code == 404
    as_csv = client.get("/api/v1/alarms", params={"station_id": text, "format": "csv"})
    assert rows(as_csv) == []
    assert counts(seeded) == before
    assert len(client.get("/api/v1/alarms", params={"state": "all"}).json()) == 12


def counts(store: Store) -> tuple[int, int]:
    with store.engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(alarms)).scalar_one(),
            conn.execute(select(func.count()).select_from(readings)).scalar_one(),
        )


# -- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture
def pg_client(pg_url: str, tmp_path: Path, now: datetime) -> Iterator[tuple[TestClient, Store]]:
    settings = make_settings(tmp_path)
    settings.database.url = pg_url
    store = Store.open(settings)
    try:
        store.upgrade()
        seed(store, now)
        with TestClient(create_app(store, settings, open_reads=True), base_url=LOOPBACK) as client:
            yield client, store
    finally:
        store.close()


@pytest.mark.postgres
def test_pages_filters_etag_and_csv_on_postgresql(
    pg_client: tuple[TestClient, Store], now: datetime
) -> None:
    client, store = pg_client
    stored = record(store, now)
    expected = ids(client.get("/api/v1/alarms", params={"state": "all"}))
    assert len(expected) == 12

    def meanwhile(page: int) -> None:
        store.record_alarms(episodes(now + timedelta(hours=page), 1))

    seen, pages = walk(client, {"state": "all", "limit": 5}, between=meanwhile)
    assert (seen, pages) == (expected, 3)
    severe = client.get(
        "/api/v1/alarms", params={"state": "all", "severity": ["alert", "emergency"]}
    )
    assert len(ids(severe)) == 6  # the alarms recorded meanwhile are info
    acked = client.get("/api/v1/alarms", params={"state": "all", "acknowledged": "true"})
    assert ids(acked) == []

    etag = client.get("/api/v1/alarms").headers["etag"]
    assert client.get("/api/v1/alarms", headers={"If-None-Match": etag}).status_code == 304
    store.acknowledge_alarm(stored[0].id, "officer1", now)
    assert client.get("/api/v1/alarms", headers={"If-None-Match": etag}).status_code == 200
    acked = client.get("/api/v1/alarms", params={"state": "all", "acknowledged": "true"})
    assert ids(acked) == [stored[0].id]

    as_json = client.get("/api/v1/alarms", params={"state": "all"}).json()
    table = rows(client.get("/api/v1/alarms", params={"state": "all", "format": "csv"}))
    assert [int(r["id"]) for r in table] == [a["id"] for a in as_json]
    assert [number(r["peak_nsv_h"]) for r in table] == [a["peak_nsv_h"] for a in as_json]
    raw = rows(
        client.get("/api/v1/stations/HN-001/readings", params={**LOCAL_DAY, "format": "csv"})
    )
    assert [float(r["dose_rate_nsv_h"]) for r in raw] == [day_value(i) for i in range(DAY_READINGS)]
    for text in SQL:
        assert client.get("/api/v1/alarms", params={"station_id": text}).json() == []
        assert client.get(f"/api/v1/stations/{text}/readings").status_code == 404
    assert len(ids(client.get("/api/v1/alarms", params={"state": "all"}))) == 14
