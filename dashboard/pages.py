"""The live map page: server-rendered shell plus the first stations layer, then JS polling.

The first layer is embedded (as JSON that Jinja escapes for a script element) so the markers
appear without a second round trip and the first poll can already send If-None-Match.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from dashboard.access import CHALLENGE, reads_open
from dashboard.bands import NO_DATA_COLOUR, bands_for_page
from dashboard.geojson import encode, station_collection
from dashboard.i18n import LANGUAGES, LOCALES, STRINGS, choose_language
from radmon.config import Settings

POLL_MS = 5000

templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,  # station names come from CSV files and devices
    )
)

router = APIRouter(include_in_schema=False)


def tile_source(tile_url: str) -> str:
    """The CSP source that admits the configured tiles (``{s}`` subdomains become ``*``)."""
    parts = urlsplit(tile_url)
    host = parts.netloc.replace("{s}", "*")
    if not parts.scheme or not host or "{" in host:
        return "http: https:"
    return f"{parts.scheme}://{host}"


def content_policy(settings: Settings) -> str:
    """No script but our own files; images only from here and the tile server."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data: {tile_source(settings.web.tile_url)}; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def _page_config(
    request: Request, settings: Settings, lang: str, layer: dict[str, Any], etag: str
) -> dict[str, Any]:
    root = request.scope.get("root_path", "")
    return {
        "lang": lang,
        "locale": LOCALES[lang],
        "strings": STRINGS[lang],
        "timezone": settings.site.timezone,
        "tile_url": settings.web.tile_url,
        "tile_attribution": settings.web.tile_attribution,
        "stations_url": f"{root}/api/v1/stations",
        "poll_ms": POLL_MS,
        "bands": bands_for_page(),
        "no_data_colour": NO_DATA_COLOUR,
        "initial": {"etag": etag, "data": layer},
    }


@router.get("/", response_class=HTMLResponse)
def map_page(request: Request, lang: str | None = Query(None)) -> HTMLResponse:
    """The full-window live map of every station."""
    settings: Settings = request.app.state.settings
    language = choose_language(lang, settings.site.language)
    root = request.scope.get("root_path", "")
    context: dict[str, Any] = {
        "lang": language,
        "t": STRINGS[language],
        "site_name": settings.site.name,
        "languages": LANGUAGES,
        "static": f"{root}/static",
    }
    if not reads_open(request):
        return templates.TemplateResponse(
            request, "login_required.html", context, status_code=401, headers=CHALLENGE
        )
    collection = station_collection(request.app.state.store.latest(), datetime.now(UTC))
    body, etag = encode(collection)
    layer = json.loads(body)  # exactly what the API answers for this ETag
    context["stations"] = layer["features"]
    context["config"] = _page_config(request, settings, language, layer, etag)
    context["bands"] = bands_for_page()
    context["no_data_colour"] = NO_DATA_COLOUR
    return templates.TemplateResponse(
        request,
        "map.html",
        context,
        headers={"Content-Security-Policy": content_policy(settings), "Cache-Control": "no-cache"},
    )
