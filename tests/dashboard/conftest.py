"""Fixtures for the web application: a real SQLite store in tmp_path and a small province."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from radmon.config import Settings, load_settings
from radmon.models import Reading, Station
from radmon.store import Store

with warnings.catch_warnings():
    # Starlette nudges towards httpx2; httpx is what the dev extra installs.
    warnings.filterwarnings("ignore", message=".*httpx2")
    from fastapi.testclient import TestClient

from dashboard import create_app
from tests.browser import chromium

XSS_NAME = "<script>alert(1)</script>"

# A tile server on loopback that does not exist: tiles fail fast, nothing leaves the machine.
DEAD_TILES = "http://127.0.0.1:9/tiles/{z}/{x}/{y}.png"

# One whole local day (Asia/Ho_Chi_Minh, UTC+7) of 10-minute readings: 2026-01-10 00:00+07:00.
DAY_START = datetime(2026, 1, 9, 17, 0, tzinfo=UTC)
DAY_READINGS = 144


def day_value(i: int) -> float:
    """The i-th reading of the fixed day: 50, 51, … so hourly and daily means are easy sums."""
    return 50.0 + i


def make_settings(tmp_path: Path, **overrides: dict) -> Settings:
    return load_settings(
        database={"url": f"sqlite:///{tmp_path}/t.db"},
        web={"tile_url": DEAD_TILES, "tile_attribution": "test tiles"},
        **overrides,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium, shared by a module's browser tests (skipped where it is missing)."""
    with chromium() as browser:
        yield browser


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store.open(settings)
    store.upgrade()
    yield store
    store.close()


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def seed(store: Store, now: datetime) -> Store:
    """HN-001 online (a full fixed day plus one fresh reading), QN-002 stale, HP-003 silent."""
    store.upsert_stations(
        [
            Station(
                station_id="HN-001",
                name="Hà Nội – Cầu Giấy",
                lat=21.03,
                lon=105.79,
                district="Cầu Giấy",
                probe_model="RM-10",
                interval_s=600,
            ),
            Station(station_id="QN-002", name=XSS_NAME, lat=21.0, lon=107.3, interval_s=600),
            Station(station_id="HP-003", name="Hải Phòng", lat=20.86, lon=106.68),
        ]
    )
    day = [
        Reading(
            station_id="HN-001",
            time=DAY_START + timedelta(minutes=10 * i),
            dose_rate_nsv_h=day_value(i),
        )
        for i in range(DAY_READINGS)
    ]
    store.write_readings(
        [
            *day,
            Reading(station_id="HN-001", time=now - timedelta(minutes=2), dose_rate_nsv_h=95.5),
            Reading(station_id="QN-002", time=now - timedelta(hours=5), dose_rate_nsv_h=120.0),
        ]
    )
    return store


@pytest.fixture
def seeded(store: Store, now: datetime) -> Store:
    return seed(store, now)


@pytest.fixture
def client(seeded: Store, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(seeded, settings, open_reads=True), base_url=LOOPBACK) as client:
        yield client


@pytest.fixture
def closed_client(seeded: Store, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(seeded, settings)) as client:
        yield client


def csrf_headers(client: TestClient) -> dict[str, str]:
    """The header a page's script sends on writes: the token from a page this client loaded."""
    return {"X-CSRF-Token": page_token(client)}


def page_token(client: TestClient, path: str = "/login") -> str:
    """The CSRF token of a page, as its forms and scripts carry it."""
    page = client.get(path)
    return page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def log_in(client: TestClient, name: str, password: str, next_path: str = "/"):
    """Sign in through the real login form; returns the form's answer (303 on success)."""
    form = {"name": name, "password": password, "csrf_token": page_token(client), "next": next_path}
    return client.post("/login", data=form, follow_redirects=False)


# open reads hold for requests that name this machine (no DNS rebinding): the test clients do
LOOPBACK = "http://127.0.0.1"
