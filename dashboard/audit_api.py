"""``GET /api/v1/audit``: the audit log for administrators and their tools.

Newest first and paged by id (``before``), like the alarm listing: an entry written while a
client pages shifts nothing, so following the ``Link`` header gives every entry once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from dashboard.access import require_role
from dashboard.api import LINK_HEADER, MAX_ROW_ID
from dashboard.params import parse_instant
from dashboard.request_rules import NO_NUL
from dashboard.schemas import SIGN_IN_ERRORS, Problem, Unprocessable
from radmon import audit
from radmon.audit import AuditEntry
from radmon.store import Store
from radmon.users import User

router = APIRouter(prefix="/api/v1", tags=["audit"])

# Most entries one answer holds; a longer history is read page by page.
MAX_ENTRIES = 1000


@router.get(
    "/audit",
    response_model=list[AuditEntry],
    responses={
        200: {"headers": {"Link": LINK_HEADER}},
        **SIGN_IN_ERRORS,
        403: {"model": Problem, "description": "the user is not an administrator"},
        422: {"model": Unprocessable},
    },
)
def list_audit(
    request: Request,
    response: Response,
    _admin: Annotated[User, Depends(require_role("admin"))],
    actor: Annotated[
        str | None, Query(max_length=500, pattern=NO_NUL, description="only this actor (exact)")
    ] = None,
    action: Annotated[
        str | None,
        Query(
            max_length=500,
            pattern=NO_NUL,
            description="only this action (exact), e.g. 'POST /admin/users'",
        ),
    ] = None,
    since: Annotated[
        str | None,
        Query(max_length=100, description="ISO 8601 with a zone: entries at or after it"),
    ] = None,
    before: Annotated[
        int | None,
        Query(ge=1, le=MAX_ROW_ID, description="the previous page's last id (the Link header)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ENTRIES, description="most entries returned")] = 100,
) -> list[AuditEntry]:
    """Who wrote what, when, from where and how it ended, newest first."""
    store: Store = request.app.state.store
    found = audit.entries(
        store,
        actor=actor or None,
        action=action or None,
        since=parse_instant("since", since) if since else None,
        before_id=before,
        limit=limit + 1,
    )
    if len(found) > limit:
        found = found[:limit]
        following = request.url.include_query_params(before=found[-1].id)
        response.headers["Link"] = f'<{following}>; rel="next"'
    return found
