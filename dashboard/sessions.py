"""Browser sessions: a random cookie, its hash in the database, ended by logout or time.

Server-side sessions (not signed cookies) so that logging out, disabling a user or changing a
role takes effect at the next request. The cookie is HttpOnly and SameSite=Lax (a link in an
SMS still opens signed in, a form on another site cannot use it) and Secure behind TLS.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from fastapi import Request, Response

from dashboard.csrf import SEED_COOKIE, SESSION_COOKIE
from radmon.config import Settings
from radmon.store import Store
from radmon.store import sessions as sql
from radmon.users import User

# last_seen is written at most this often per session: a map polling every 5 s reads its
# session on every poll, and should not write it each time.
TOUCH_EVERY = timedelta(minutes=1)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _cookie_path(request: Request) -> str:
    return request.scope.get("root_path", "") or "/"


def start(request: Request, response: Response, user: User) -> str:
    """Sign *user* in on this browser: a new session and its cookie; returns the token."""
    store: Store = request.app.state.store
    settings: Settings = request.app.state.settings
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    lifetime = timedelta(hours=settings.web.session_hours)
    with store.transaction() as conn:
        sql.remove_expired(conn, now)
        sql.insert(
            conn,
            token,
            user.name,
            now,
            now + lifetime,
            client_address(request),
            request.headers.get("user-agent", ""),
        )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(lifetime.total_seconds()),
        path=_cookie_path(request),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(SEED_COOKIE, path=_cookie_path(request))
    return token


def user_for(store: Store, settings: Settings, token: str, now: datetime) -> User | None:
    """The user of a live session, or None (unknown, expired, idle too long, user disabled)."""
    with store.engine.connect() as conn:
        row = sql.fetch(conn, token)
    if row is None:
        return None
    idle = timedelta(minutes=settings.web.session_idle_minutes)
    if row["disabled"] or row["expires_at"] <= now or row["last_seen_at"] + idle <= now:
        with store.transaction() as conn:
            sql.remove(conn, token)
        return None
    if now - row["last_seen_at"] >= TOUCH_EVERY:
        with store.transaction() as conn:
            sql.touch(conn, token, now)
    return User(name=row["user_name"], role=row["role"], created_at=row["user_since"])


def end(request: Request, response: Response) -> bool:
    """Log this browser out: forget the session and its cookie; whether there was one."""
    token = request.cookies.get(SESSION_COOKIE)
    removed = 0
    if token:
        with request.app.state.store.transaction() as conn:
            removed = sql.remove(conn, token)
    response.delete_cookie(SESSION_COOKIE, path=_cookie_path(request))
    return bool(removed)


def end_all(store: Store, user_name: str) -> int:
    """Sign *user_name* out everywhere (after a password, role or state change)."""
    with store.transaction() as conn:
        return sql.remove_user(conn, user_name)
