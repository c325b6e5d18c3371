"""The live map with 1,000 stations in Chromium: navigation start → every marker exists.

The province of ``bench.dashboard_common`` (1,000 ten-minute stations, a day of readings, open
alarms) on PostgreSQL behind ``radmon serve`` (its own process, MQTT and detection off). Debian's
Chromium through Playwright (``tests.browser``), headless, signed in through the login form
once; each run is a fresh browser context (nothing cached but the session cookie) that opens
``/``. The figure is the page's own clock (``performance.now()``, zero at navigation start) when
map.js has made all 1,000 markers (``radmonMap.drawnAt``) and after the next frame was painted
(``radmonMap.paintedAt``); the run checks that 1,000 marker paths are in the DOM.

The ceiling, in the same browser and run: a page with nothing but Leaflet (from the same node)
and an inline script that draws 1,000 SVG circle markers, from navigation start to the last one
made; and the HTML of the map page alone (``responseEnd`` of the navigation).

    python -m bench.dashboard_map [--stations 1000] [--runs 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench._common import (
    ADMIN_URL,
    fmt_int,
    load_average,
    machine_facts,
    print_header,
    stop_on_sigterm,
    throwaway_database,
    write_json,
)
from bench.alerting_latency import trouble
from bench.dashboard_common import (
    PASSWORD,
    USER,
    add_user,
    seed_province,
    web_node,
    write_web_config,
)
from tests.broker import free_port
from tests.browser import chromium

TARGET_MS = 2000.0
VIEWPORT = {"width": 1600, "height": 900}

# The ceiling page: Leaflet from the node, 1,000 SVG circle markers from an inline array.
BARE_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="{node}/static/leaflet/leaflet.css">
<script src="{node}/static/leaflet/leaflet.js"></script>
<style>html, body, #map {{ height: 100%; margin: 0; }}</style></head>
<body><div id="map"></div><script>
var map = L.map("map"), points = [], markers = [];
for (var i = 0; i < {n}; i++)
  points.push([20.75 + (i % 40) * 0.022, 106.45 + Math.floor(i / 40) * 0.06]);
map.fitBounds(L.latLngBounds(points));
points.forEach(function (p, i) {{
  markers.push(L.circleMarker(p, {{ radius: 8, fillColor: "#2e7d32", fillOpacity: 0.9,
    color: "#263238", weight: 1, className: "bare-" + i }}).addTo(map));
}});
window.bare = {{ drawnAt: performance.now(), count: markers.length }};
requestAnimationFrame(function () {{ setTimeout(function () {{
  window.bare.paintedAt = performance.now(); }}, 0); }});
</script></body></html>"""


@contextmanager
def bare_page(node: str, n: int) -> Iterator[str]:
    """Serve the ceiling page from a loopback server in this process; yields its URL."""
    html = BARE_PAGE.format(node=node, n=n).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def sign_in_state(browser: Any, base: str) -> dict[str, Any]:
    """Cookies of a session made through the login form, for the timed contexts."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill('input[name="name"]', USER)
    page.fill('input[name="password"]', PASSWORD)
    page.locator('form:has(input[name="password"]) button[type="submit"]').click()
    page.wait_for_url(f"{base}/")
    state = context.storage_state()
    context.close()
    return state


def map_run(browser: Any, base: str, state: dict[str, Any], n: int) -> dict[str, float]:
    """One cold open of the map: times on the page's clock (ms from navigation start)."""
    context = browser.new_context(viewport=VIEWPORT, storage_state=state, locale="vi-VN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{base}/", wait_until="commit")
        page.wait_for_function(
            "n => window.radmonMap && window.radmonMap.paintedAt !== undefined "
            "&& Object.keys(window.radmonMap.markers).length === n",
            arg=n,
            timeout=60_000,
            polling=50,
        )
        found = page.evaluate(
            """() => ({
                drawn: window.radmonMap.drawnAt,
                painted: window.radmonMap.paintedAt,
                paths: document.querySelectorAll('path.station-marker').length,
                html: performance.getEntriesByType('navigation')[0].responseEnd,
                dom: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
                bytes: performance.getEntriesByType('navigation')[0].transferSize,
            })"""
        )
        if found["paths"] != n:
            raise AssertionError(f"{found['paths']} marker paths in the DOM, not {n}")
        if errors:
            raise AssertionError(f"the page raised JavaScript errors: {errors}")
        return found
    finally:
        context.close()


def bare_run(browser: Any, url: str, n: int) -> dict[str, float]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(url, wait_until="commit")
        page.wait_for_function(
            "() => window.bare && window.bare.paintedAt !== undefined", timeout=60_000, polling=50
        )
        found = page.evaluate("() => window.bare")
        if found["count"] != n:
            raise AssertionError(f"{found['count']} bare markers, not {n}")
        return {"drawn": found["drawnAt"], "painted": found["paintedAt"]}
    finally:
        context.close()


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values), 1),
        "min_ms": round(min(values), 1),
        "max_ms": round(max(values), 1),
    }


def run(args: argparse.Namespace, url: str, workdir: Path) -> dict[str, Any]:
    result: dict[str, Any] = {"seed": seed_province(url, args.stations)}
    print(f"seeded: {result['seed']}")
    port = free_port()
    config = workdir / "node.yaml"
    write_web_config(config, url, port)
    add_user(config)
    base = f"http://127.0.0.1:{port}"
    log_path = workdir / "node.log"
    with (
        web_node(config, port, log_path),
        chromium() as browser,
        bare_page(base, args.stations) as bare,
    ):
        result["chromium"] = browser.version
        state = sign_in_state(browser, base)
        runs, ceiling = [], []
        for k in range(args.runs + 1):  # the first of each is a warm-up, not counted
            one = map_run(browser, base, state, args.stations)
            other = bare_run(browser, bare, args.stations)
            print(
                f"  run {k}{' (warm-up)' if k == 0 else ''}: markers at {one['drawn']:.0f} ms, "
                f"painted {one['painted']:.0f} ms (HTML {one['html']:.0f} ms); "
                f"bare Leaflet {other['drawn']:.0f} / {other['painted']:.0f} ms"
            )
            if k:
                runs.append(one)
                ceiling.append(other)
    result["page_bytes"] = runs[-1]["bytes"]
    result["markers"] = summary([r["drawn"] for r in runs])
    result["painted"] = summary([r["painted"] for r in runs])
    result["html"] = summary([r["html"] for r in runs])
    result["dom_content_loaded"] = summary([r["dom"] for r in runs])
    result["bare_markers"] = summary([r["drawn"] for r in ceiling])
    result["bare_painted"] = summary([r["painted"] for r in ceiling])
    result["node_log_trouble"] = trouble(log_path)
    return result


def report(result: dict[str, Any]) -> None:
    print()
    print(
        f"Chromium {result['chromium']}; map page {fmt_int(result['page_bytes'])} bytes "
        "on the wire (HTML with the first layer)"
    )
    print(f"{'from navigation start, ms':<52} {'median':>8} {'min':>8} {'max':>8} {'n':>3}")
    rows = (
        ("map page: HTML received (responseEnd)", "html"),
        ("map page: DOMContentLoaded", "dom_content_loaded"),
        ("map page: all markers exist", "markers"),
        ("map page: all markers painted", "painted"),
        ("ceiling: bare Leaflet, markers exist", "bare_markers"),
        ("ceiling: bare Leaflet, markers painted", "bare_painted"),
    )
    for label, key in rows:
        s = result[key]
        figures = f"{s['median_ms']:>8.1f} {s['min_ms']:>8.1f} {s['max_ms']:>8.1f}"
        print(f"{label:<52} {figures} {s['n']:>3}")
    markers, bare = result["markers"], result["bare_markers"]
    print()
    print(
        f"ratio to bare Leaflet: {markers['median_ms'] / bare['median_ms']:.2f}× (markers exist), "
        f"{result['painted']['median_ms'] / result['bare_painted']['median_ms']:.2f}× (painted)"
    )
    verdict = "MET" if markers["median_ms"] <= TARGET_MS else "MISSED"
    print(
        f"target: all markers within {TARGET_MS:,.0f} ms (median): {verdict} "
        f"({markers['median_ms']:,.0f} ms)"
    )
    hits = result.get("node_log_trouble") or []
    print(f"node log: {len(hits)} warning/error line(s)" + (":" if hits else ""))
    for line in hits:
        print(f"  | {line}")
    print(f"load average at the end: {load_average()}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard_map", description=__doc__)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7, help="timed runs (after one warm-up)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--pg", default=ADMIN_URL)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    if args.quick:
        args.stations, args.runs = 50, 2
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    stop_on_sigterm()
    facts = machine_facts(args.pg)
    print_header(
        "the live map in Chromium: navigation start → every station's marker",
        [
            f"{fmt_int(args.stations)} ten-minute stations with a day of readings and open "
            "alarms on PostgreSQL; radmon serve in its own process (MQTT, detection off)",
            f"Debian Chromium (Playwright, headless, {VIEWPORT['width']}×{VIEWPORT['height']}), "
            f"signed in; {args.runs} runs after a warm-up, each a fresh context (no HTTP cache)",
            "figure: performance.now() when map.js has made every marker, and after the next "
            "paint; checked: that many marker paths in the DOM, no script error",
            "ceiling: bare Leaflet drawing as many SVG circle markers, same browser, same run",
        ],
        facts,
    )
    started = time.perf_counter()
    with throwaway_database(args.pg) as url, tempfile.TemporaryDirectory() as tmp:
        result = run(args, url, Path(tmp))
    result["seconds"] = round(time.perf_counter() - started, 1)
    report(result)
    print(f"whole run {result['seconds']:.0f} s; throwaway database dropped")
    write_json(args.json, {"machine": facts, "args": vars(args), "result": result})


if __name__ == "__main__":
    main()
