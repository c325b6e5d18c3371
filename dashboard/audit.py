"""The audit log of the web: one entry for every write request, whatever its outcome.

An ASGI middleware, so no write endpoint can forget it: after the answer, it records who
(the signed-in user, a machine's token, the demo officer or "anonymous"), what (method and
route, with the path's ids), from where (client address) and how it ended (ok, refused,
error). Sign-in and sign-out are recorded by ``dashboard.login`` with the name tried.
Readings pushed by stations are data, not acts of people, and are not audited.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard.csrf import UNSAFE_METHODS
from radmon import audit

log = logging.getLogger(__name__)

# Writes that are recorded elsewhere: pushed readings (data) and sign-in/out (dashboard.login).
NOT_AUDITED = frozenset({"/api/v1/readings", "/login", "/logout"})
# Refused writes of anonymous clients are recorded at most once a minute for each address and
# action; the next entry counts those left out. Anyone can send them, as fast as they like,
# and each would otherwise add a row for ever.
ANONYMOUS_EVERY_S = 60.0
_MAX_TRACKED = 10_000


class _AnonymousRefusals:
    """Which (address, action) last had an entry, and how many were left out since."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def admit(self, key: tuple[str, str], now: float) -> int | None:
        """None: leave this one out; else record it, with how many were left out before."""
        last = self._last.get(key)
        if last is not None and now - last[0] < ANONYMOUS_EVERY_S:
            self._last[key] = (last[0], last[1] + 1)
            return None
        if len(self._last) >= _MAX_TRACKED:  # many addresses: forget, recording a little more
            self._last.clear()
        self._last[key] = (now, 0)
        return last[1] if last is not None else 0


def outcome(status: int) -> str:
    if status < 400:
        return "ok"
    return "error" if status >= 500 else "refused"


class AuditWrites:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._anonymous = _AnonymousRefusals()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path = scope["path"][len(root) :] if scope["path"].startswith(root) else scope["path"]
        if path in NOT_AUDITED:
            await self.app(scope, receive, send)
            return
        answered: dict[str, int] = {}

        async def remember_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered["status"] = message["status"]
            await send(message)

        scope.setdefault("state", {})
        try:
            await self.app(scope, receive, remember_status)
        finally:
            await self._record(scope, path, answered.get("status", 500))

    async def _record(self, scope: Scope, path: str, status: int) -> None:
        state: dict[str, Any] = scope.get("state", {})
        user = state.get("user")
        route = scope.get("route")
        template = getattr(route, "path", None) or path
        client = scope.get("client")
        headers = dict(scope.get("headers") or [])
        action = f"{scope['method']} {template}"
        source = client[0] if client else "unknown"
        left_out = 0
        if user is None and status >= 400:
            admitted = self._anonymous.admit((source, action), time.monotonic())
            if admitted is None:
                return
            left_out = admitted
        details = {
            # what only the endpoint knows (a new role, how many stations): request.state.audit
            **(state.get("audit") or {}),
            **({"left_out_before": left_out} if left_out else {}),
            "status": status,
            "via": state.get("auth") or ("demo" if user is not None else None),
            "user_agent": headers.get(b"user-agent", b"").decode("latin-1")[:200],
        }
        try:
            await asyncio.to_thread(
                audit.record,
                scope["app"].state.store,
                user.name if user is not None else "anonymous",
                action,
                target=path,
                outcome=outcome(status),
                source=source,
                details=details,
            )
        except Exception:  # the answer has gone out; losing the database must not hide it
            log.exception("could not record %s %s in the audit log", scope["method"], path)
