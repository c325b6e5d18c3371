"""Alerting administration over HTTP: maintenance silences and the notification outbox.

Silences are the duty officer's (maintenance, calibration); the outbox shows phone numbers
and e-mail addresses, so reading it needs an officer too, and sending a failed notification
again is an administrator's decision, taken once its cause is fixed. Everything goes through
``alerting.admin``, the same functions the CLI calls.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from alerting import admin
from alerting.outbox import Notification
from dashboard.access import require_read_access, require_role
from dashboard.api import MAX_ROW_ID, AlarmId, Officer, StoreDep
from dashboard.schemas import (
    SIGN_IN_ERRORS,
    NewSilence,
    Problem,
    RetryAccepted,
    Silence,
    Unprocessable,
)
from radmon.errors import InputError
from radmon.users import User

# Most notifications one answer lists (newest first); older ones stay in the database.
MAX_NOTIFICATIONS = 1000
# By number: Starlette has renamed the constant (RFC 9110), and either name warns somewhere.
_UNPROCESSABLE = 422

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
Admin = Annotated[User, Depends(require_role("admin"))]

router = APIRouter(
    prefix="/api/v1",
    tags=["alerting"],
    dependencies=[Depends(require_read_access)],
    responses={
        **SIGN_IN_ERRORS,
        403: {"model": Problem, "description": "the user's role is too low"},
    },
)

# Short links put in SMS: few characters, and a path that outlives the page it points to.
short_links = APIRouter(include_in_schema=False)


def _unprocessable(exc: InputError) -> HTTPException:
    return HTTPException(_UNPROCESSABLE, detail=str(exc))


@router.get("/silences")
def list_silences(
    store: StoreDep,
    include_ended: Annotated[bool, Query(description="ended silences too")] = False,
) -> list[Silence]:
    """Maintenance silences, oldest first: running ones, or every one with include_ended."""
    return [Silence.model_validate(row) for row in admin.silences(store, include_ended)]


@router.post(
    "/silences",
    status_code=status.HTTP_201_CREATED,
    responses={
        400: {"model": Problem, "description": "the body cannot be read (not UTF-8 text)"},
        422: {"model": Unprocessable},
    },
)
def add_silence(body: NewSilence, store: StoreDep, user: Officer) -> Silence:
    """Hold back the pages of matching alarms from now until ends_at (or for duration_minutes).

    The alarms are still recorded and shown; only nobody is paged. A silence matching every
    alarm is refused: that is switching alerting off, a configuration change.
    """
    now = datetime.now(UTC)
    if body.ends_at is not None:
        ends_at = body.ends_at
    else:
        assert body.duration_minutes is not None  # NewSilence wants exactly one of the two
        ends_at = now + timedelta(minutes=body.duration_minutes)
    try:
        silence_id = admin.add_silence(
            store, body.matcher(), ends_at, user.name, body.comment, starts_at=now
        )
    except InputError as exc:
        raise _unprocessable(exc) from exc
    # include_ended: a silence of a few milliseconds may be over by now, and is still the answer
    return next(
        Silence.model_validate(row)
        for row in admin.silences(store, include_ended=True)
        if row["id"] == silence_id
    )


@router.delete(
    "/silences/{silence_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": Problem, "description": "no such silence running"}},
)
def expire_silence(silence_id: RowId, store: StoreDep, _user: Officer) -> Response:
    """End a silence now: pages of matching alarms go out again from the next planning round."""
    if not admin.expire_silence(store, silence_id):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"silence {silence_id}: no such silence running"
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/notifications", responses={422: {"model": Unprocessable}})
def list_notifications(
    store: StoreDep,
    _user: Officer,
    state: Annotated[
        str | None,
        Query(description="pending, sending, sent, failed or withdrawn; default: every state"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_NOTIFICATIONS, description="most returned")] = 100,
) -> list[Notification]:
    """The outbox, newest first: who was paged, how, and whether it went out (officer and up,
    since it shows phone numbers)."""
    try:
        return admin.notifications(store, state, limit)
    except InputError as exc:
        raise _unprocessable(exc) from exc


@router.post(
    "/notifications/{notification_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"model": Problem, "description": "no failed notification with this id"}},
)
def retry_notification(notification_id: RowId, store: StoreDep, _user: Admin) -> RetryAccepted:
    """Send a failed notification again (same key), once its cause is fixed."""
    if not admin.retry_notification(store, notification_id):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"notification {notification_id}: no failed notification with this id",
        )
    return RetryAccepted(id=notification_id, state="pending")


@short_links.get("/a/{alarm_id}", status_code=status.HTTP_307_TEMPORARY_REDIRECT)
def alarm_link(alarm_id: AlarmId, request: Request) -> RedirectResponse:
    """The alarm page an SMS names; the page asks for a login, the link itself reveals nothing."""
    root = request.scope.get("root_path", "")
    target = root + request.app.url_path_for("alarm_page", alarm_id=str(alarm_id))
    return RedirectResponse(target, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
