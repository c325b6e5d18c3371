"""The live map page: server-rendered shell plus the first stations layer, then JS polling.

The first layer is embedded in the page's configuration as the very bytes the API answers
(spliced in and escaped for a script element, never decoded and encoded again), so the markers
appear without a second round trip and the first poll can already send If-None-Match. The
province outline is served beside it: the base layer of an office whose tile server cannot be
reached.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from dashboard.access import PageReader
from dashboard.bands import NO_DATA_COLOUR, PLAIN_EDGE, bands_for_page, rings_for_page
from dashboard.geojson import live_layer, reported_offline
from dashboard.http_cache import not_modified, strong_etag
from dashboard.web import page_context, render, root_path
from gis import outline_attribution, outline_bytes
from radmon.config import Settings
from radmon.errors import InputError

# Under 5 s from a new reading to its colour: the poll interval, the layer's age (at most
# geojson.LIVE_MAX_AGE_S) and one answer.
POLL_MS = 4000
# The map switches to the outline when this many tiles failed and none loaded, or when no tile
# has loaded this long after the page started.
TILE_ERRORS_BEFORE_FALLBACK = 3
TILE_TIMEOUT_MS = 4000
GEOJSON = "application/geo+json"

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)


def outline_setting(settings: Settings) -> str:
    """``web.outline_geojson``: a shipped outline's name or a file's path; "" for none."""
    return settings.web.outline_geojson


def _outline(settings: Settings) -> bytes | None:
    """The configured outline; a broken one is logged and left out, never a broken map."""
    try:
        return outline_bytes(outline_setting(settings))
    except InputError as exc:
        log.warning("web.outline_geojson: %s; the map has no offline base layer", exc)
        return None


def _script_json(text: str) -> Markup:
    """JSON safe inside a script element (as Jinja's ``tojson``): these only occur in strings."""
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(char, escaped)
    return Markup(text)


def _config_json(config: dict[str, Any], etag: str, body: bytes) -> Markup:
    """``{...config, "initial": {"etag": etag, "data": <the layer>}}`` for the page's script."""
    head = json.dumps(config, ensure_ascii=False)[:-1]
    initial = f'"initial": {{"etag": {json.dumps(etag)}, "data": {body.decode()}}}'
    return _script_json(f"{head}, {initial}}}")


def _page_config(request: Request, context: dict[str, Any]) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    root = root_path(request)
    outline = _outline(settings)
    return {
        "lang": context["lang"],
        "locale": context["locale"],
        "strings": context["t"],
        "timezone": settings.site.timezone,
        "tile_url": settings.web.tile_url,
        "tile_attribution": settings.web.tile_attribution,
        "tile_errors_before_fallback": TILE_ERRORS_BEFORE_FALLBACK,
        "tile_timeout_ms": TILE_TIMEOUT_MS,
        "outline_url": f"{root}/map/outline.geojson" if outline else None,
        "outline_attribution": outline_attribution(outline) if outline else None,
        "stations_url": f"{root}/api/v1/stations",
        "readings_url": f"{root}/api/v1/stations/",
        "alarms_url": f"{root}/api/v1/alarms",
        "station_page": f"{root}/stations/",
        "alarm_page": f"{root}/alarms/",
        "poll_ms": POLL_MS,
        "bands": bands_for_page(),
        "rings": rings_for_page(context["t"]),
        "plain_edge": PLAIN_EDGE,
        "no_data_colour": NO_DATA_COLOUR,
    }


@router.get("/", response_class=HTMLResponse)
def map_page(request: Request, _user: PageReader) -> HTMLResponse:
    """The full-window live map of every station."""
    state = request.app.state
    layer = live_layer(state.store, datetime.now(UTC), reported_offline(state.ingest))
    context = page_context(request)
    return render(
        request,
        "map.html",
        {
            "stations": layer.features,
            "config_json": _config_json(_page_config(request, context), layer.etag, layer.body),
            "bands": bands_for_page(),
            "rings": rings_for_page(context["t"]),
            "no_data_colour": NO_DATA_COLOUR,
        },
    )


@router.get("/map/outline.geojson")
def province_outline(
    request: Request,
    _user: PageReader,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The province outline (``web.outline_geojson``): 404 when none is configured."""
    body = _outline(request.app.state.settings)
    if body is None:
        return Response(status_code=status.HTTP_404_NOT_FOUND)
    etag = strong_etag(body)
    # A day in the browser's cache: the outline changes with a release, not during a shift.
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400"}
    if not_modified(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=body, media_type=GEOJSON, headers=headers)
