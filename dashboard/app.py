"""``create_app``: the one place that assembles routers, static files and error answers."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import xstatic.pkg.leaflet as xstatic_leaflet
from fastapi import Depends, FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError

import radmon
from dashboard import (
    admin_pages,
    alarm_pages,
    alerting_api,
    api,
    audit_api,
    health,
    login,
    metrics,
    pages,
    push,
    station_page,
)
from dashboard.access import LoginRequired
from dashboard.audit import AuditWrites
from dashboard.ratelimit import LoginThrottle
from dashboard.request_rules import check_parameters, document_rules
from ingest.stations import StationDirectory
from radmon.config import Settings
from radmon.store import SchemaNotReady, Store

if TYPE_CHECKING:
    from ingest.mqtt import MqttIngest
    from radmon.runtime import OnStored

STATIC_DIR = Path(__file__).parent / "static"


def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    # A lost database is the server's state, not a bug: say so, and let clients retry.
    detail = str(exc) if isinstance(exc, SchemaNotReady) else "the database is unavailable"
    return JSONResponse(
        {"detail": detail},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "10"},
    )


def _invalid_request(_request: Request, exc: Exception) -> Response:
    """FastAPI's own 422, but ASCII: it echoes the input, and a lone surrogate (JSON's
    ``"\\ud800"``) cannot be written as UTF-8, so the answer was a 500."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    body = json.dumps({"detail": jsonable_encoder(errors)}, ensure_ascii=True)
    return Response(body, status.HTTP_422_UNPROCESSABLE_ENTITY, media_type="application/json")


def _login_required(request: Request, _exc: Exception) -> RedirectResponse:
    """Pages answer a visitor who is not signed in with the login form, then come back."""
    root = request.scope.get("root_path", "")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(
        f"{root}/login?{urlencode({'next': target})}", status_code=status.HTTP_303_SEE_OTHER
    )


def _secret(store: Store, settings: Settings) -> bytes:
    """The key that signs CSRF tokens: the configured one, else one kept in the database."""
    if settings.web.secret_key:
        return settings.web.secret_key.get_secret_value().encode()
    try:
        return store.secret("web")
    except (OperationalError, SchemaNotReady):
        # No database yet (it answers 503 until it comes): sign with a key of this process.
        return secrets.token_bytes(32)


def create_app(
    store: Store,
    settings: Settings,
    *,
    open_reads: bool = False,
    ingest: MqttIngest | None = None,
    on_stored: OnStored | None = None,
    on_ahead: OnStored | None = None,
) -> FastAPI:
    """The web application over *store*.

    *open_reads* lets anyone read without login; only ``radmon demo`` on a loopback address
    sets it, because users and sessions do not exist yet. *ingest*, when this process runs
    one, feeds ``/metrics``. *on_stored* (the detectors) judges what HTTP push stores, and
    *on_ahead* hears of what it refuses for a time ahead of the clock.
    """
    app = FastAPI(
        title="radmon",
        version=radmon.__version__,
        summary="Environmental gamma dose-rate monitoring: live stations and their readings.",
        dependencies=[Depends(check_parameters)],
    )
    document_rules(app)
    app.state.store = store
    app.state.settings = settings
    app.state.open_reads = open_reads
    app.state.ingest = ingest
    app.state.on_stored = on_stored
    app.state.on_ahead = on_ahead
    app.state.stations = StationDirectory(store.stations, settings.ingest.station_refresh_s)
    app.state.secret = _secret(store, settings)
    web = settings.web
    app.state.login_throttle = LoginThrottle(
        web.login_failures_per_address, web.login_failures_per_user, web.login_window_minutes * 60
    )
    app.add_middleware(AuditWrites)
    app.include_router(health.router)
    app.include_router(api.router)
    app.include_router(alerting_api.router)
    app.include_router(alerting_api.short_links)
    app.include_router(push.router)
    app.include_router(metrics.router)
    app.include_router(pages.router)
    app.include_router(station_page.router)
    app.include_router(alarm_pages.router)
    app.include_router(login.router)
    app.include_router(admin_pages.router)
    app.include_router(audit_api.router)
    app.mount("/static/leaflet", StaticFiles(directory=xstatic_leaflet.BASE_DIR), name="leaflet")
    app.mount("/static/app", StaticFiles(directory=STATIC_DIR), name="app-static")
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(SchemaNotReady, _database_unavailable)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    return app
