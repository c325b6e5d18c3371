"""Sign in and out in the browser: the login form, its session cookie, and logout.

The form carries a CSRF token like every other (a login CSRF would sign a victim into the
attacker's account); failures are rate limited and audited by ``dashboard.access.sign_in``.
After signing in the browser goes back to the page it asked for, if that is one of ours.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard import csrf, sessions
from dashboard.access import sign_in
from dashboard.web import render, root_path
from radmon import audit
from radmon.users import MAX_PASSWORD

router = APIRouter(include_in_schema=False)

LOGIN_STRINGS = {
    "vi": {
        "login_title": "Đăng nhập",
        "user_name": "Tên người dùng",
        "password": "Mật khẩu",
        "sign_in": "Đăng nhập",
        "wrong_credentials": "Sai tên người dùng hoặc mật khẩu, hoặc tài khoản đã bị khoá.",
        "signed_out": "Đã đăng xuất.",
    },
    "en": {
        "login_title": "Sign in",
        "user_name": "User name",
        "password": "Password",
        "sign_in": "Sign in",
        "wrong_credentials": "Wrong user name or password, or the account is disabled.",
        "signed_out": "Signed out.",
    },
}


def safe_next(request: Request, target: str | None) -> str:
    """*target* if it is a path on this site, else the map: no open redirect to elsewhere."""
    root = root_path(request)
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target if target.startswith(root) else root + target
    return root + "/"


def _form(request: Request, status_code: int = 200, **context: object) -> HTMLResponse:
    context.setdefault("next", request.query_params.get("next", ""))
    return render(request, "login.html", context, strings=LOGIN_STRINGS, status_code=status_code)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _form(request, signed_out="signed_out" in request.query_params)


@router.post("/login")
async def login(
    request: Request,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=MAX_PASSWORD)],
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    csrf.check(request, csrf_token)
    try:
        user = await asyncio.to_thread(sign_in, request, name, password, "form")
    except HTTPException as exc:  # too many failed sign-ins: say so on the form
        response = _form(request, exc.status_code, error=exc.detail, name=name, next=next)
        response.headers.update(exc.headers or {})
        return response
    if user is None:
        return _form(request, status.HTTP_401_UNAUTHORIZED, failed=True, name=name, next=next)
    response = RedirectResponse(safe_next(request, next), status_code=status.HTTP_303_SEE_OTHER)
    await asyncio.to_thread(sessions.start, request, response, user)
    await asyncio.to_thread(
        audit.record,
        request.app.state.store,
        user.name,
        "sign-in",
        source=sessions.client_address(request),
        details={"via": "form"},
    )
    return response


@router.post("/logout")
async def logout(
    request: Request, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    csrf.check(request, csrf_token)
    target = f"{root_path(request)}/login?signed_out=1"
    response = RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)
    token = request.cookies.get(csrf.SESSION_COOKIE)
    user = None
    if token:
        user = await asyncio.to_thread(
            sessions.user_for,
            request.app.state.store,
            request.app.state.settings,
            token,
            datetime.now(UTC),
        )
    if await asyncio.to_thread(sessions.end, request, response):
        await asyncio.to_thread(
            audit.record,
            request.app.state.store,
            user.name if user else "unknown",
            "sign-out",
            source=sessions.client_address(request),
        )
    return response
