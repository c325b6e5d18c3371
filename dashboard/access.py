"""Who may read and who may write: sessions, HTTP Basic, API tokens, roles and CSRF.

People sign in on ``/login`` (a session cookie) or send HTTP Basic with each request (scripts);
machines send an API token as a bearer. Reads (``require_read_access``) need any of them, or
``radmon demo`` on a loopback address, which opens reads (``app.state.open_reads``). Writes
(``require_role("officer")``) need a role that includes the one asked for and, when the
browser sent the credentials by itself (a cookie, the open demo), the page's CSRF token.

argon2 takes tens of milliseconds on purpose: ``current_user`` is a plain ``def``, so FastAPI
runs it in its threadpool and the event loop never waits, and FastAPI caches it per request,
so a request that needs both read access and a role verifies the password once.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import (
    APIKeyCookie,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from fastapi.security.utils import get_authorization_scheme_param

from dashboard import csrf, sessions
from dashboard.csrf import SESSION_COOKIE
from dashboard.ratelimit import LoginThrottle
from dashboard.sessions import client_address
from radmon import api_tokens, audit
from radmon.runtime import is_loopback
from radmon.users import Role, User, authenticate

# RFC 9110 wants a challenge with every 401. Stations push with bearer tokens (dashboard.push);
# people send HTTP Basic or sign in; machines read with API tokens.
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="radmon"'}
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="radmon"'}
READ_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="radmon", Basic realm="radmon"'}

SIGN_IN = "sign in at /login, or send the HTTP Basic credentials of a radmon user"
READ_SIGN_IN = f"{SIGN_IN} (users and roles: 'radmon users add NAME --role viewer')"
WRONG_CREDENTIALS = "wrong user name or password, or the user is disabled"

# Who writes in ``radmon demo`` on loopback when nobody signs in: the demo's duty officer.
DEMO_USER = User(name="demo", role=Role.OFFICER, created_at=datetime(2026, 1, 1, tzinfo=UTC))


def _unauthorized(detail: str, challenge: dict[str, str] = BASIC_CHALLENGE) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers=challenge)


class _Basic(HTTPBasic):
    """FastAPI's HTTPBasic decodes ASCII only; passwords here may be Vietnamese (UTF-8)."""

    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:  # type: ignore[override]
        scheme, param = get_authorization_scheme_param(request.headers.get("Authorization"))
        if scheme.lower() != "basic":
            return None  # no credentials, or a bearer token: not ours to judge
        try:
            decoded = b64decode(param, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _unauthorized("malformed HTTP Basic credentials") from exc
        name, colon, password = decoded.partition(":")
        if not colon:
            raise _unauthorized("malformed HTTP Basic credentials")
        return HTTPBasicCredentials(username=name, password=password)


_basic = _Basic(realm="radmon", auto_error=False)
_bearer = HTTPBearer(auto_error=False, description="an API token (radmon tokens add --api NAME)")
_session_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="the browser session of /login"
)


def reads_open(request: Request) -> bool:
    """Open reads (the demo on loopback), and the request names this machine: a page on
    another name that resolves to 127.0.0.1 (DNS rebinding) is same-origin with the demo, and
    would otherwise read it and act as its officer."""
    return bool(request.app.state.open_reads) and _names_this_machine(
        request.headers.get("host", "")
    )


def _names_this_machine(host: str) -> bool:
    if host.startswith("["):  # [::1]:8080
        name = host[1 : host.find("]")]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return is_loopback(name)


def throttle(request: Request) -> LoginThrottle:
    return request.app.state.login_throttle


def sign_in(request: Request, name: str, password: str, via: str) -> User | None:
    """Check a name and password, with rate limiting and an audit entry for each failure.

    429 while the address or the name has too many recent failures (before any hashing, so
    a flood costs the server nothing); None when the credentials are wrong.
    """
    address = client_address(request)
    wait = throttle(request).retry_after(address, name)
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many failed sign-ins; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    store = request.app.state.store
    user = authenticate(store, name, password)
    if user is None:
        throttle(request).failed(address, name)
        audit.record(
            store, name[:64], "sign-in", outcome="refused", source=address, details={"via": via}
        )
        return None
    throttle(request).succeeded(address, name)
    return user


def _bearer_user(request: Request, token: str) -> User:
    user = api_tokens.holder(request.app.state.store, token)
    if user is None:
        raise _unauthorized("unknown or revoked API token", READ_CHALLENGE)
    return user


def current_user(
    request: Request,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _cookie: Annotated[str | None, Depends(_session_cookie)],
) -> User | None:
    """Who sends this request: HTTP Basic, a machine's bearer token, or a session cookie.

    None when nothing came. Wrong credentials are refused even where reads are open: a client
    that tries to sign in should learn that it failed, not silently act as somebody else.
    The user (and how they signed in) is kept on ``request.state`` for the audit log and CSRF.
    """
    user, via = None, None
    if credentials is not None:
        user, via = sign_in(request, credentials.username, credentials.password, "basic"), "basic"
        if user is None:
            raise _unauthorized(WRONG_CREDENTIALS)
    elif bearer is not None:
        user, via = _bearer_user(request, bearer.credentials), "token"
    elif token := request.cookies.get(SESSION_COOKIE):
        settings = request.app.state.settings
        user = sessions.user_for(request.app.state.store, settings, token, datetime.now(UTC))
        via = "session" if user is not None else None
    request.state.user = user
    request.state.auth = via
    return user


def check_write(request: Request) -> None:
    """CSRF rules for a write: what a browser sends on its own needs the page's token.

    Session cookies and the open demo are ambient (a page on another site could make the
    browser send them); HTTP Basic and bearer tokens are sent by scripts, which only need
    to come from the same origin when a browser says where they come from.
    """
    if getattr(request.state, "auth", None) in ("basic", "token"):
        if not csrf.same_origin(request):
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail="cross-site request refused")
        return
    csrf.check_header(request)


class LoginRequired(Exception):
    """A page asked for by somebody not signed in: the app answers with the login page."""


def page_reader(
    request: Request, user: Annotated[User | None, Depends(current_user)] = None
) -> User | None:
    """Dependency of every HTML page: the signed-in user, None in the open demo, else login."""
    if user is None and not reads_open(request):
        raise LoginRequired
    return user


PageReader = Annotated[User | None, Depends(page_reader)]


def page_role(role: Role | str) -> Callable[..., User]:
    """A page for *role* and above: login when nobody is signed in, 403 when the role is low."""
    needed = Role.parse(role)

    def has_role(request: Request, user: Annotated[User | None, Depends(current_user)]) -> User:
        if user is None:
            if not (reads_open(request) and DEMO_USER.role.at_least(needed)):
                raise LoginRequired
            user = request.state.user = DEMO_USER
        if not user.role.at_least(needed):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"{user.name} is {user.role}; this page needs {needed} or above",
            )
        return user

    return has_role


def require_read_access(
    request: Request, user: Annotated[User | None, Depends(current_user)] = None
) -> User | None:
    """Dependency of every ``/api/v1`` read: a signed-in user of any role, or open reads."""
    if user is None and not reads_open(request):
        raise _unauthorized(READ_SIGN_IN, READ_CHALLENGE)
    return user


def require_role(role: Role | str) -> Callable[..., User]:
    """A dependency for a write: the signed-in ``User`` whose role includes *role*.

    401 with a Basic challenge without (valid) credentials, 403 when the role is too low.
    In ``radmon demo`` on loopback (open reads), a request without credentials acts as the
    built-in ``demo`` user, an officer, so the demo's duty officer can acknowledge alarms
    without creating users; anything above officer still needs a real user there.
    """
    needed = Role.parse(role)  # a typo fails when the route is declared, not when it is used

    def has_role(request: Request, user: Annotated[User | None, Depends(current_user)]) -> User:
        if user is None:
            if not (reads_open(request) and DEMO_USER.role.at_least(needed)):
                raise _unauthorized(f"{SIGN_IN} whose role is {needed} or above")
            user = request.state.user = DEMO_USER
        if not user.role.at_least(needed):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"{user.name} is {user.role}; this needs {needed} or above",
            )
        if request.method in csrf.UNSAFE_METHODS:
            check_write(request)
        return user

    return has_role
