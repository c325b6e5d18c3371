"""The live map in headless Chromium: markers, rings, popups, layers, the offline outline.

Uses Debian's /usr/bin/chromium through Playwright (no browser download). Tiles point at a
closed port on loopback, so they fail at once and no request leaves the machine: which is also
how the map learns to fall back to the province outline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from dashboard import create_app
from dashboard.bands import NO_DATA_COLOUR, PLAIN_EDGE, RINGS, colour_for
from dashboard.i18n import STRINGS
from dashboard.pages import POLL_MS
from radmon.models import Alarm, Category, Reading, Severity, Station
from radmon.store import Store
from tests.browser import Watched, closed_port, screenshot, serve
from tests.dashboard.conftest import XSS_NAME, make_settings

pytestmark = pytest.mark.browser

IMG_XSS_NAME = '<img src=x onerror="alert(2)">'
# Dose rates cycling through every band; one stale station and one that never reported.
LEVELS = [50.0, 150.0, 250.0, 500.0, 2_000.0, 150_000.0]
STALE, SILENT, XSS_IDS = "QN-22", "QN-23", ("QN-X1", "QN-X2")
CHANGED = "QN-01"
# Open alarms; SPARKED also has a day of 10-minute readings before its latest one.
ALARMED = {"QN-05": Severity.ALERT, "QN-13": Severity.EMERGENCY}
SPARKED = "QN-05"
RING = {ring.severity: ring for ring in RINGS}
VI = STRINGS["vi"]


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
        if station_id == SPARKED:
            readings += [
                Reading(
                    station_id=station_id,
                    time=moment - timedelta(minutes=10 * k),
                    dose_rate_nsv_h=80.0 + 10 * (k % 7),
                )
                for k in range(1, 143)
            ]
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
    alarm_ids: dict[str, int]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    tile_host = f"127.0.0.1:{closed_port()}"
    settings = make_settings(tmp_path_factory.mktemp("browser"))
    settings.web.tile_url = f"http://{tile_host}/tiles/{{z}}/{{x}}/{{y}}.png"
    store = Store.open(settings)
    store.upgrade()
    now = datetime.now(UTC).replace(microsecond=0)
    stations, readings, expected = _province(now)
    store.upsert_stations(stations)
    store.write_readings(readings)
    recorded = store.record_alarms(
        [
            Alarm(
                station_id=station_id,
                kind="threshold",
                category=Category.RADIOLOGICAL,
                severity=severity,
                opened_at=now - timedelta(minutes=20),
                peak_nsv_h=1500.0,
            )
            for station_id, severity in ALARMED.items()
        ]
    )
    alarm_ids = {alarm.station_id: alarm.id for alarm in recorded}
    try:
        with serve(create_app(store, settings, open_reads=True)) as url:
            yield LiveSite(url, tile_host, store, expected, alarm_ids)
    finally:
        store.close()


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
    assert time.monotonic() - started < POLL_MS / 1000 + 1.0  # within 5 s of the reading
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


def test_alarm_rings_and_offline_grey(page) -> None:
    page, _ = page
    for station_id, severity in ALARMED.items():
        marker = f"path.station-{station_id}"
        assert page.get_attribute(marker, "stroke") == RING[severity].colour, station_id
        assert page.get_attribute(marker, "stroke-width") == str(RING[severity].weight)
        assert page.get_attribute(marker, "data-severity") == severity.value
    assert page.get_attribute(f"path.station-{CHANGED}", "stroke") == PLAIN_EDGE
    for station_id in (STALE, SILENT):
        marker = page.locator(f"path.station-{station_id}")
        assert marker.get_attribute("fill") == NO_DATA_COLOUR
        assert "offline" in (marker.get_attribute("class") or "")
    legend = page.locator(".legend .rings li")
    assert legend.count() == len(RINGS)
    assert legend.locator("text=" + VI["severity_emergency"]).count() == 1


def test_popup_has_sparkline_open_alarms_and_links(page, site: LiveSite) -> None:
    page, _ = page
    series = page.request.get(f"{site.url}/api/v1/stations/{SPARKED}/readings?resolution=hour")
    points = len(series.json()["points"])
    assert points >= 23  # a day of 10-minute readings, in hourly means
    page.locator(f"path.station-{SPARKED}").click()
    popup = page.locator(".leaflet-popup-content .station-popup")
    path = popup.locator("svg.sparkline-chart path.sparkline-path")
    path.wait_for()
    assert path.get_attribute("data-points") == str(points)
    drawn = path.get_attribute("d") or ""
    assert drawn.count("M") + drawn.count("L") == points
    alarm = popup.locator(".popup-alarms a.alarm-link")
    alarm.wait_for()
    assert alarm.count() == 1
    assert alarm.get_attribute("href") == f"/alarms/{site.alarm_ids[SPARKED]}"
    assert VI["severity_alert"] in alarm.inner_text()
    assert popup.locator("a.station-link").get_attribute("href") == f"/stations/{SPARKED}"
    assert "nSv/h" in popup.locator(".sparkline-range").inner_text()

    page.locator(f"path.station-{CHANGED}").click()  # no alarm open there
    other = page.locator(f'.station-popup[data-station-id="{CHANGED}"] .popup-alarms')
    other.locator(".alarm-list").wait_for()
    assert VI["no_open_alarms"] in other.inner_text()


def test_dead_tiles_switch_to_the_province_outline(page, site: LiveSite) -> None:
    page, _ = page
    page.wait_for_function("() => window.radmonMap.base === 'outline'", timeout=10_000)
    assert page.evaluate("() => window.radmonMap.fallback") is True
    # the outline's shape comes by its own request: it may be drawn a moment after the switch
    page.wait_for_function("() => document.querySelectorAll('path.province-outline').length > 0")
    assert VI["tiles_fallback"] in page.inner_text("#status")
    assert "geoBoundaries" in page.inner_text(".leaflet-control-attribution")
    outline = page.request.get(f"{site.url}/map/outline.geojson")
    assert outline.ok and outline.headers["content-type"] == "application/geo+json"
    assert outline.json()["features"][0]["properties"]["licence"] == "CC BY-SA 4.0"
    screenshot(page, "map-offline-outline")


def _layer_input(page, label: str):
    return page.locator(".leaflet-control-layers label", has_text=label).locator("input")


def test_layer_control_switches_bases_and_station_overlays(page, site: LiveSite) -> None:
    page, _ = page
    page.wait_for_function("() => window.radmonMap.base === 'outline'", timeout=10_000)
    page.hover(".leaflet-control-layers")
    page.locator(".leaflet-control-layers-expanded").wait_for()

    _layer_input(page, VI["layer_tiles"]).check()
    page.wait_for_function("() => window.radmonMap.base === 'tiles'")
    assert page.locator("path.province-outline").count() == 0
    _layer_input(page, VI["layer_outline"]).check()
    page.wait_for_function("() => document.querySelectorAll('path.province-outline').length > 0")
    assert page.evaluate("() => window.radmonMap.chosenBase") is True

    markers = page.locator("path.station-marker")
    assert markers.count() == len(site.expected)
    _layer_input(page, VI["layer_alarm"]).check()
    _layer_input(page, VI["layer_all"]).uncheck()
    assert markers.count() == len(ALARMED)
    assert {m.get_attribute("data-station-id") for m in markers.all()} == set(ALARMED)
    _layer_input(page, VI["layer_offline"]).check()
    assert {m.get_attribute("data-station-id") for m in markers.all()} == {
        *ALARMED,
        STALE,
        SILENT,
    }
    _layer_input(page, VI["layer_all"]).check()
    assert markers.count() == len(site.expected)
