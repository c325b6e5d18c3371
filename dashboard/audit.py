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
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard.csrf import UNSAFE_METHODS
from radmon import audit

log = logging.getLogger(__name__)

# Writes that are recorded elsewhere: pushed readings (data) and sign-in/out (dashboard.login).
NOT_AUDITED = frozenset({"/api/v1/readings", "/login", "/logout"})


def outcome(status: int) -> str:
    if status < 400:
        return "ok"
    return "error" if status >= 500 else "refused"


class AuditWrites:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
        details = {
            # what only the endpoint knows (a new role, how many stations): request.state.audit
            **(state.get("audit") or {}),
            "status": status,
            "via": state.get("auth") or ("demo" if user is not None else None),
            "user_agent": headers.get(b"user-agent", b"").decode("latin-1")[:200],
        }
        try:
            await asyncio.to_thread(
                audit.record,
                scope["app"].state.store,
                user.name if user is not None else "anonymous",
                f"{scope['method']} {template}",
                target=path,
                outcome=outcome(status),
                source=client[0] if client else "unknown",
                details=details,
            )
        except Exception:  # the answer has gone out; losing the database must not hide it
            log.exception("could not record %s %s in the audit log", scope["method"], path)
