"""The live map in headless Chromium: markers, live colour updates, escaping, no outside calls.

Uses Debian's /usr/bin/chromium through Playwright (no browser download). Tiles point at a
closed port on loopback, so they fail at once and no request leaves the machine.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn

from dashboard import create_app
from dashboard.bands import NO_DATA_COLOUR, colour_for
from radmon.models import Reading, Station
from radmon.store import Store
from tests.dashboard.conftest import XSS_NAME, make_settings

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

IMG_XSS_NAME = '<img src=x onerror="alert(2)">'
# Dose rates cycling through every band; one stale station and one that never reported.
LEVELS = [50.0, 150.0, 250.0, 500.0, 2_000.0, 150_000.0]
STALE, SILENT, XSS_IDS = "QN-22", "QN-23", ("QN-X1", "QN-X2")
CHANGED = "QN-01"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _province(now: datetime) -> tuple[list[Station], list[Reading], dict[str, float | None]]:
    """23 stations on a 5×5 grid around Hạ Long plus two with hostile names in the middle."""
    stations, readings, expected = [], [], {}
    cells = [(r, c) for r in range(5) for c in range(5) if (r, c) not in ((2, 1), (2, 3))]
    for n, (row, col) in enumerate(cells, start=1):
        station_id = f"QN-{n:02d}"
        stations.append(
            Station(
                station_id=station_id,
                name=f"Trạm {n}",
                lat=20.9 + 0.15 * row,
                lon=106.7 + 0.3 * col,
                district="Hạ Long",
            )
        )
        value = LEVELS[n % len(LEVELS)]
        if station_id == SILENT:
            expected[station_id] = None
            continue
        moment = now - (timedelta(hours=6) if station_id == STALE else timedelta(minutes=1))
        readings.append(Reading(station_id=station_id, time=moment, dose_rate_nsv_h=value))
        expected[station_id] = None if station_id == STALE else value
    for station_id, name, col in ((XSS_IDS[0], XSS_NAME, 1), (XSS_IDS[1], IMG_XSS_NAME, 3)):
        stations.append(
            Station(station_id=station_id, name=name, lat=20.9 + 0.3, lon=106.7 + 0.3 * col)
        )
        readings.append(
            Reading(station_id=station_id, time=now - timedelta(minutes=1), dose_rate_nsv_h=90.0)
        )
        expected[station_id] = 90.0
    return stations, readings, expected


@dataclass
class LiveSite:
    url: str
    tile_host: str
    store: Store
    expected: dict[str, float | None]


@dataclass
class Watched:
    """What a page did: requests, dialogs, script errors and console complaints."""

    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    tile_host = f"127.0.0.1:{_closed_port()}"
    settings = make_settings(tmp_path_factory.mktemp("browser"))
    settings.web.tile_url = f"http://{tile_host}/tiles/{{z}}/{{x}}/{{y}}.png"
    store = Store.open(settings)
    store.upgrade()
    stations, readings, expected = _province(datetime.now(UTC).replace(microsecond=0))
    store.upsert_stations(stations)
    store.write_readings(readings)

    app = create_app(store, settings, open_reads=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveSite(f"http://127.0.0.1:{port}", tile_host, store, expected)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); browser tests skipped")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, site: LiveSite) -> Iterator[tuple[object, Watched]]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="vi-VN")
    page = context.new_page()
    watched = Watched()
    page.on("request", lambda request: watched.requests.append(request.url))
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    page.on("console", lambda msg: watched.console.append(msg.text))

    def on_dialog(dialog) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(site.url + "/", wait_until="domcontentloaded")
    page.wait_for_function(
        "n => window.radmonMap && Object.keys(window.radmonMap.markers).length === n",
        arg=len(site.expected),
        timeout=10_000,
    )
    yield page, watched
    context.close()
    assert watched.dialogs == [], "a dialog fired: station text was run as script"
    assert watched.errors == [], "the page raised JavaScript errors"
    assert not [m for m in watched.console if "Content Security Policy" in m]
    app_host = urlsplit(site.url).netloc
    for url in watched.requests:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            continue
        assert parts.netloc in (app_host, site.tile_host), f"request left the site: {url}"


def _fill(page, station_id: str) -> str | None:
    return page.get_attribute(f"path.station-{station_id}", "fill")


def test_every_station_has_a_marker_coloured_by_its_band_and_updates_live(
    page, site: LiveSite
) -> None:
    page, watched = page
    assert page.locator("path.station-marker").count() == len(site.expected) == 25
    for station_id, value in site.expected.items():
        assert _fill(page, station_id) == colour_for(value), station_id
    assert _fill(page, STALE) == _fill(page, SILENT) == NO_DATA_COLOUR
    assert page.get_attribute(f"path.station-{CHANGED}", "data-station-id") == CHANGED
    assert "25 trạm · cập nhật" in page.inner_text("#status")
    assert any(urlsplit(u).netloc == site.tile_host for u in watched.requests), "no tile asked"

    before = _fill(page, CHANGED)
    high = colour_for(5000.0)
    assert before != high
    site.store.write_readings(
        [Reading(station_id=CHANGED, time=datetime.now(UTC), dose_rate_nsv_h=5000.0)]
    )
    started = time.monotonic()
    page.wait_for_function(
        "([selector, colour]) => document.querySelector(selector).getAttribute('fill') === colour",
        arg=[f"path.station-{CHANGED}", high],
        timeout=10_000,
    )
    assert time.monotonic() - started < 10
    assert page.evaluate("() => window.radmonMap.updates") >= 1
    assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1

    page.locator(f"path.station-{CHANGED}").click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    text = popup.inner_text()
    assert "Trạm 1" in text and CHANGED in text and "Hạ Long" in text
    assert "nSv/h" in text and "µSv/h" in text
    assert "GMT+7" in text  # shown in the site's zone, not the browser's or UTC

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "map.png"), animations="disabled")


@pytest.mark.parametrize(
    ("station_id", "name"), [(XSS_IDS[0], XSS_NAME), (XSS_IDS[1], IMG_XSS_NAME)]
)
def test_hostile_station_names_show_as_text(page, station_id: str, name: str) -> None:
    page, watched = page
    page.locator(f"path.station-{station_id}").click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert popup.locator(".station-name").inner_text() == name
    assert popup.locator("script, img").count() == 0
    page.wait_for_timeout(300)  # let an injected onerror or script run, if there were one
    assert watched.dialogs == []
