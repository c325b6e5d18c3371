"""The station page in headless Chromium: the chart, its controls, zoom, and escaping.

Uses Debian's /usr/bin/chromium through Playwright (no browser download). The station has a
hostile name, a day of ten-minute readings with a rain shower, a cleared alarm and an open one.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboard import create_app
from dashboard.station_page import SEVERITY_COLOURS
from radmon.models import Alarm, AlarmState, Category, Reading, Severity, Station
from radmon.store import Store
from tests.browser import Watched, screenshot, serve
from tests.dashboard.conftest import XSS_NAME, make_settings

pytestmark = pytest.mark.browser

STATION = "HL-07"
READINGS = 144  # one day, every ten minutes
WET = range(60, 72)  # two hours of rain, ten to twelve hours ago


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = make_settings(tmp_path_factory.mktemp("station"))
    store = Store.open(settings)
    store.upgrade()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    first = now - timedelta(hours=24) + timedelta(minutes=5)  # last reading 5 minutes ago
    store.upsert_stations(
        [
            Station(
                station_id=STATION,
                name=XSS_NAME,
                lat=20.95,
                lon=107.08,
                district="Hạ Long",
                probe_model="RM-10",
                elevation_m=12,
                interval_s=600,
                has_rain_gauge=True,
            )
        ]
    )
    store.write_readings(
        [
            Reading(
                station_id=STATION,
                time=first + timedelta(minutes=10 * i),
                dose_rate_nsv_h=95.0 + (30.0 if i in WET else 0.0) + (i % 5),
                precip_mm_h=4.0 + i % 3 if i in WET else 0.0,
            )
            for i in range(READINGS)
        ]
    )
    store.record_alarms(
        [
            Alarm(
                station_id=STATION,
                kind="rain_washout",
                category=Category.RADIOLOGICAL,
                severity=Severity.WARNING,
                state=AlarmState.CLEARED_UNACK,
                opened_at=first + timedelta(minutes=10 * WET.start),
                cleared_at=first + timedelta(minutes=10 * WET.stop),
                peak_nsv_h=129.0,
            ),
            Alarm(
                station_id=STATION,
                kind="offline",
                category=Category.TECHNICAL,
                severity=Severity.ALERT,
                opened_at=now - timedelta(minutes=30),
            ),
        ]
    )
    try:
        with serve(create_app(store, settings, open_reads=True)) as url:
            yield url
    finally:
        store.close()


def loads(page) -> int:
    return page.evaluate("() => window.radmonStation.loads")


def wait_loads(page, n: int) -> dict:
    page.wait_for_function("n => window.radmonStation && window.radmonStation.loads >= n", arg=n)
    shown = page.evaluate("() => Object.assign({}, window.radmonStation)")
    assert shown["error"] is None, shown["error"]
    return shown


def span_ms(shown: dict) -> float:
    start, end = (datetime.fromisoformat(shown[k].replace("Z", "+00:00")) for k in ("start", "end"))
    return (end - start).total_seconds() * 1000


def test_station_chart_controls_zoom_and_escaping(browser, site: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="vi-VN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    watched = Watched()
    watched.attach(page)
    page.goto(f"{site}/stations/{STATION}?lang=en", wait_until="domcontentloaded")

    # the last 24 hours at raw resolution: every reading, the shower, both alarm spans
    shown = wait_loads(page, 1)
    assert shown["resolution"] == "raw" and shown["points"] == READINGS
    assert shown["rainBars"] == len(WET) == page.locator("rect.rain-bar").count()
    assert shown["spans"] == 2
    cleared = page.locator('rect.alarm-span[data-severity="warning"]')
    assert cleared.get_attribute("fill") == SEVERITY_COLOURS["warning"]
    box = cleared.bounding_box()
    plot = page.locator("rect.pointer-surface").bounding_box()
    # the shower's two hours of the day: about a twelfth of the chart's width
    assert box["width"] == pytest.approx(plot["width"] / 12, rel=0.1)
    assert page.locator(".mean-line").count() == 1 and page.locator(".rain-tick").count() >= 2
    assert page.locator(".x-tick").count() >= 4

    # the hostile name is text, in the heading and the title; nothing ran
    assert page.locator("#station-name").inner_text() == XSS_NAME
    assert XSS_NAME in page.title()
    assert page.locator("script:not([src])").count() == 1  # only the JSON config
    assert "Hạ Long" in page.locator(".station-meta").inner_text()
    assert page.locator("#open-alarms li").count() == 1
    assert "%" in page.locator("#availability").inner_text()
    assert page.evaluate("() => window.radmonStation.availability") == pytest.approx(
        100 * READINGS / 144, abs=1
    )

    # hourly: 24 buckets (25 where the day straddles one more), min–max band and rain
    page.click('[data-resolution="hour"]')
    shown = wait_loads(page, 2)
    assert shown["resolution"] == "hour" and 24 <= shown["points"] <= 25
    assert page.locator(".minmax-band").count() >= 1
    assert 2 <= shown["rainBars"] <= 3
    assert page.get_attribute('[data-resolution="hour"]', "aria-pressed") == "true"

    # drag across the second quarter: the page fetches those 6 hours, finer again
    surface = page.locator("rect.pointer-surface").bounding_box()
    y = surface["y"] + surface["height"] / 2
    page.mouse.move(surface["x"] + surface["width"] * 0.25, y)
    page.mouse.down()
    page.mouse.move(surface["x"] + surface["width"] * 0.4, y, steps=5)
    page.mouse.move(surface["x"] + surface["width"] * 0.5, y, steps=5)
    page.mouse.up()
    shown = wait_loads(page, 3)
    assert span_ms(shown) == pytest.approx(6 * 3600e3, rel=0.05)
    assert shown["resolution"] == "raw" and shown["zoomed"]
    assert 34 <= shown["points"] <= 38
    asked = [
        parse_qs(urlsplit(u).query)
        for u in watched.requests
        if urlsplit(u).path == f"/api/v1/stations/{STATION}/readings"
    ]
    assert asked[-1]["start"] == [shown["start"]] and asked[-1]["resolution"] == ["raw"]
    assert page.is_enabled("#reset-zoom")

    page.click("#reset-zoom")
    shown = wait_loads(page, 4)
    assert span_ms(shown) == pytest.approx(24 * 3600e3, rel=0.001)
    assert shown["points"] == READINGS and not shown["zoomed"]
    assert not page.is_enabled("#reset-zoom")
    screenshot(page, "station")

    # a year: daily means; raw readings cannot cover it
    page.click('[data-preset="1y"]')
    shown = wait_loads(page, 5)
    assert shown["resolution"] == "day" and 1 <= shown["points"] <= 2
    assert not page.is_enabled('[data-resolution="raw"]')
    assert page.is_enabled('[data-resolution="hour"]')

    page.wait_for_timeout(200)  # let an injected script run, if there were one
    context.close()
    watched.assert_clean(site)
