"""The live map in headless Chromium: markers, live colour updates, escaping, no outside calls.

Uses Debian's /usr/bin/chromium through Playwright (no browser download). Tiles point at a
closed port on loopback, so they fail at once and no request leaves the machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from dashboard import create_app
from dashboard.bands import NO_DATA_COLOUR, colour_for
from radmon.models import Reading, Station
from radmon.store import Store
from tests.browser import Watched, chromium, closed_port, screenshot, serve
from tests.dashboard.conftest import XSS_NAME, make_settings

pytestmark = pytest.mark.browser

IMG_XSS_NAME = '<img src=x onerror="alert(2)">'
# Dose rates cycling through every band; one stale station and one that never reported.
LEVELS = [50.0, 150.0, 250.0, 500.0, 2_000.0, 150_000.0]
STALE, SILENT, XSS_IDS = "QN-22", "QN-23", ("QN-X1", "QN-X2")
CHANGED = "QN-01"


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


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    tile_host = f"127.0.0.1:{closed_port()}"
    settings = make_settings(tmp_path_factory.mktemp("browser"))
    settings.web.tile_url = f"http://{tile_host}/tiles/{{z}}/{{x}}/{{y}}.png"
    store = Store.open(settings)
    store.upgrade()
    stations, readings, expected = _province(datetime.now(UTC).replace(microsecond=0))
    store.upsert_stations(stations)
    store.write_readings(readings)
    try:
        with serve(create_app(store, settings, open_reads=True)) as url:
            yield LiveSite(url, tile_host, store, expected)
    finally:
        store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser, site: LiveSite) -> Iterator[tuple[object, Watched]]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="vi-VN")
    page = context.new_page()
    watched = Watched()
    watched.attach(page)
    page.goto(site.url + "/", wait_until="domcontentloaded")
    page.wait_for_function(
        "n => window.radmonMap && Object.keys(window.radmonMap.markers).length === n",
        arg=len(site.expected),
        timeout=10_000,
    )
    yield page, watched
    context.close()
    watched.assert_clean(site.url, site.tile_host)


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

    screenshot(page, "map")


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
