"""What every HTML page shares: templates, the words, the signed-in user, CSRF and headers.

A page module declares its route with ``PageReader`` (or ``page_role(...)``) and answers
``render(request, "x.html", {...}, strings=X_STRINGS)``. The base template then carries the
navigation, the language switch, the user's name, the logout form and the CSRF token that
scripts send back as ``X-CSRF-Token`` on every write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from dashboard import csrf
from dashboard.i18n import LANGUAGES, LOCALES, STRINGS, choose_language
from radmon.config import Settings
from radmon.users import Role, User

LANG_COOKIE = "radmon_lang"
# A year: the language is a preference, not a secret.
LANG_COOKIE_AGE = 365 * 24 * 3600

templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,  # station names and comments come from devices, files and people
    )
)


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
        "connect-src 'self'; media-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def page_language(request: Request) -> str:
    """``?lang=`` first, then the language cookie, then the site's language."""
    settings: Settings = request.app.state.settings
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return choose_language(asked, settings.site.language)


def root_path(request: Request) -> str:
    return request.scope.get("root_path", "")


def page_context(
    request: Request, strings: dict[str, dict[str, str]] | None = None
) -> dict[str, Any]:
    """The names every template may use; *strings* adds a page's own words to the common ones."""
    settings: Settings = request.app.state.settings
    lang = page_language(request)
    words = dict(STRINGS[lang])
    if strings:
        words.update(strings[lang])
    user: User | None = getattr(request.state, "user", None)
    root = root_path(request)
    return {
        "lang": lang,
        "locale": LOCALES[lang],
        "t": words,
        "site_name": settings.site.name,
        "timezone": settings.site.timezone,
        "languages": LANGUAGES,
        "root": root,
        "static": f"{root}/static",
        "path": request.url.path,
        "user": user,
        "is_admin": user is not None and user.role.at_least(Role.ADMIN),
        "csrf_token": csrf.token_for(request),
    }


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    strings: dict[str, dict[str, str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """*template* with the common context plus *context*, and the headers every page sends."""
    settings: Settings = request.app.state.settings
    full = page_context(request, strings)
    full.update(context or {})
    response = templates.TemplateResponse(
        request,
        template,
        full,
        status_code=status_code,
        headers={
            "Content-Security-Policy": content_policy(settings),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )
    csrf.ensure_cookie(request, response)
    asked = request.query_params.get("lang")
    if asked in LANGUAGES and asked != request.cookies.get(LANG_COOKIE):
        response.set_cookie(
            LANG_COOKIE, asked, max_age=LANG_COOKIE_AGE, samesite="lax", httponly=True
        )
    return response
