"""CSRF protection for everything a browser can send on its own (cookies, the open demo).

The token is an HMAC, under the server's secret, of a per-browser seed: the session cookie
once signed in, else a random ``radmon_csrf`` cookie (so the login form and the loopback demo
are protected too). Pages carry it in a meta tag and hidden form fields; scripts send it as
``X-CSRF-Token``. A write is also refused when its Origin is another site's, which covers
HTTP Basic credentials that a browser may have cached.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from fastapi import HTTPException, Request, Response, status

SESSION_COOKIE = "radmon_session"
SEED_COOKIE = "radmon_csrf"
HEADER = "X-CSRF-Token"
FORM_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _secret(request: Request) -> bytes:
    return request.app.state.secret


def _seed(request: Request) -> str:
    """The seed this browser has, or a new one that ``ensure_cookie`` will hand it."""
    seed = request.cookies.get(SESSION_COOKIE) or request.cookies.get(SEED_COOKIE)
    if seed:
        return seed
    fresh = getattr(request.state, "csrf_seed", None)
    if fresh is None:
        fresh = secrets.token_urlsafe(32)
        request.state.csrf_seed = fresh
    return fresh


def _sign(secret: bytes, seed: str) -> str:
    digest = hmac.new(secret, b"csrf:" + seed.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_for(request: Request) -> str:
    """The token a page hands its forms and scripts."""
    return _sign(_secret(request), _seed(request))


def token_for_session(request: Request, session_token: str) -> str:
    """The token that belongs to a session just created (its cookie is not sent back yet)."""
    return _sign(_secret(request), session_token)


def ensure_cookie(request: Request, response: Response) -> None:
    """Give a browser without a seed the one its page's token was made from."""
    fresh = getattr(request.state, "csrf_seed", None)
    if fresh is not None and not request.cookies.get(SESSION_COOKIE):
        response.set_cookie(
            SEED_COOKIE,
            fresh,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin != "null"
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def _refuse(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)


def check(request: Request, submitted: str | None) -> None:
    """403 unless *submitted* is this browser's token and the request is same-origin."""
    if not same_origin(request):
        raise _refuse("cross-site request refused")
    seed = request.cookies.get(SESSION_COOKIE) or request.cookies.get(SEED_COOKIE)
    if not seed or not submitted:
        raise _refuse(f"CSRF token missing: send {HEADER} with the token of the page")
    if not hmac.compare_digest(_sign(_secret(request), seed), submitted):
        raise _refuse("CSRF token invalid: reload the page and try again")


def check_header(request: Request) -> None:
    """``check`` for scripts, which send the token in the ``X-CSRF-Token`` header."""
    check(request, request.headers.get(HEADER))
