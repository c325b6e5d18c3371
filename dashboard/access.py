"""Who may read and who may write, over HTTP Basic for now.

Reads (``require_read_access``) need a user of any role, or ``radmon demo`` on a loopback
address, which opens reads (``app.state.open_reads``). Writes (``require_role("officer")``)
need a user whose role includes the one asked for, and give the endpoint that ``User`` so it
can record who acted. Sessions, CSRF and login pages arrive later; until then browsers and
scripts send HTTP Basic credentials with every request.

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
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from fastapi.security.utils import get_authorization_scheme_param

from radmon.users import Role, User, authenticate

# The browser pages say this until login pages exist (dashboard.i18n shows it).
LOGIN_PENDING = {
    "en": (
        "Login arrives with users and roles (not available yet); until then only "
        "'radmon demo' on a loopback address answers reads."
    ),
    "vi": (
        "Chức năng đăng nhập sẽ có cùng với người dùng và phân quyền (chưa có); "
        "hiện chỉ 'radmon demo' trên địa chỉ loopback cho phép xem dữ liệu."
    ),
}

# RFC 9110 wants a challenge with every 401. Stations push with bearer tokens (dashboard.push);
# people send HTTP Basic; reads will take either once read tokens exist.
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="radmon"'}
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="radmon"'}
READ_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="radmon", Basic realm="radmon"'}

SIGN_IN = "sign in: send the HTTP Basic credentials of a radmon user"
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


def reads_open(request: Request) -> bool:
    return bool(request.app.state.open_reads)


def current_user(
    request: Request, credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)]
) -> User | None:
    """The user who sent HTTP Basic credentials, None when none came; 401 when they are wrong.

    Wrong credentials are refused even where reads are open: a client that tries to sign in
    should learn that it failed, not silently act as somebody else.
    """
    if credentials is None:
        return None
    user = authenticate(request.app.state.store, credentials.username, credentials.password)
    if user is None:
        raise _unauthorized(WRONG_CREDENTIALS)
    return user


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
            if reads_open(request) and DEMO_USER.role.at_least(needed):
                return DEMO_USER
            raise LoginRequired
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
    """Dependency of every ``/api/v1`` read: a signed-in user of any role, or open reads.

    Called directly (``dashboard.metrics``) it sees no credentials, only whether reads are open.
    """
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
            if reads_open(request) and DEMO_USER.role.at_least(needed):
                return DEMO_USER
            raise _unauthorized(f"{SIGN_IN} whose role is {needed} or above")
        if not user.role.at_least(needed):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"{user.name} is {user.role}; this needs {needed} or above",
            )
        return user

    return has_role
