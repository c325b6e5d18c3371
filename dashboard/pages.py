"""The live map page: server-rendered shell plus the first stations layer, then JS polling.

The first layer is embedded (as JSON that Jinja escapes for a script element) so the markers
appear without a second round trip and the first poll can already send If-None-Match.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dashboard.access import PageReader
from dashboard.bands import NO_DATA_COLOUR, bands_for_page
from dashboard.geojson import encode, station_collection
from dashboard.web import page_context, render, root_path
from radmon.config import Settings

POLL_MS = 5000

router = APIRouter(include_in_schema=False)


def _page_config(request: Request, layer: dict[str, Any], etag: str) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    context = page_context(request)
    root = root_path(request)
    return {
        "lang": context["lang"],
        "locale": context["locale"],
        "strings": context["t"],
        "timezone": settings.site.timezone,
        "tile_url": settings.web.tile_url,
        "tile_attribution": settings.web.tile_attribution,
        "stations_url": f"{root}/api/v1/stations",
        "station_page": f"{root}/stations/",
        "poll_ms": POLL_MS,
        "bands": bands_for_page(),
        "no_data_colour": NO_DATA_COLOUR,
        "initial": {"etag": etag, "data": layer},
    }


@router.get("/", response_class=HTMLResponse)
def map_page(request: Request, _user: PageReader) -> HTMLResponse:
    """The full-window live map of every station."""
    collection = station_collection(request.app.state.store.latest(), datetime.now(UTC))
    body, etag = encode(collection)
    layer = json.loads(body)  # exactly what the API answers for this ETag
    context = {
        "stations": layer["features"],
        "config": _page_config(request, layer, etag),
        "bands": bands_for_page(),
        "no_data_colour": NO_DATA_COLOUR,
    }
    return render(request, "map.html", context)
