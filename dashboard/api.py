"""The JSON API under ``/api/v1`` (CONTRACTS: HTTP API): reads, and the alarm lifecycle.

Store calls are synchronous, so every endpoint is a plain ``def``: FastAPI runs it in its
threadpool and the event loop never waits on the database. Writes record the signed-in user's
name and the server's clock, never a name or time the client claims.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    Body,
    Depends,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    status,
)

from dashboard.access import require_read_access, require_role
from dashboard.geojson import encode, station_collection
from dashboard.http_cache import not_modified
from dashboard.params import period
from dashboard.schemas import (
    AlarmAction,
    AlarmComment,
    AlarmWithHistory,
    Problem,
    ReadingSeries,
    StationCollection,
)
from radmon.models import Alarm, Resolution, Station, StationStats
from radmon.store import Store
from radmon.users import User

GEOJSON = "application/geo+json"

# Most alarms one answer lists; a province-wide outage opens one technical alarm per station.
MAX_ALARMS = 10_000

# Longest period per resolution: raw readings of a 60 s station over a month are ~45 000 points.
MAX_SPAN = {Resolution.RAW: timedelta(days=31), Resolution.HOUR: timedelta(days=366)}
_COARSER = {Resolution.RAW: "hour or day", Resolution.HOUR: "day"}

StartParam = Annotated[
    str | None,
    Query(description="ISO 8601 with a zone (e.g. 2026-11-21T00:00:00+07:00); default: end − 24 h"),
]
EndParam = Annotated[str | None, Query(description="ISO 8601 with a zone; default: now")]

# Row ids in paths: positive, and within what both databases can compare (SQLite binds at most
# a signed 64-bit integer; a larger one would be a 500, not a 404).
MAX_ROW_ID = 2**63 - 1
AlarmId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the alarm's id")]

# Who may act on alarms: the duty officer and above (the loopback demo's ``demo`` user too).
Officer = Annotated[User, Depends(require_role("officer"))]
# (alarm id, who, when, note) -> the alarm as stored, or None when there is no such alarm
AlarmWrite = Callable[[int, str, datetime, str | None], Alarm | None]
ActionBody = Annotated[AlarmAction | None, Body()]
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "the user's role is below officer"},
    404: {"model": Problem, "description": "no such alarm"},
}

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_read_access)],
    responses={401: {"model": Problem, "description": "login required"}},
)


def get_store(request: Request) -> Store:
    return request.app.state.store


StoreDep = Annotated[Store, Depends(get_store)]


def _station_or_404(store: Store, station_id: str) -> Station:
    station = store.station(station_id)
    if station is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no station {station_id!r}")
    return station


@router.get(
    "/stations",
    response_model=StationCollection,
    responses={
        200: {"content": {GEOJSON: {}}},
        304: {"description": "unchanged since the ETag given in If-None-Match"},
    },
)
def list_stations(
    store: StoreDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Every station with its latest reading, as GeoJSON; cheap to poll with If-None-Match."""
    body, etag = encode(station_collection(store.latest(), datetime.now(UTC)))
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if not_modified(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=body, media_type=GEOJSON, headers=headers)


@router.get("/stations/{station_id}", responses={404: {"model": Problem}})
def get_station(station_id: str, store: StoreDep) -> Station:
    """A station's metadata."""
    return _station_or_404(store, station_id)


@router.get(
    "/stations/{station_id}/readings",
    responses={404: {"model": Problem}, 422: {"model": Problem}},
)
def get_readings(
    station_id: str,
    store: StoreDep,
    start: StartParam = None,
    end: EndParam = None,
    resolution: Resolution = Resolution.RAW,
) -> ReadingSeries:
    """A station's series over [start, end): raw readings, or hourly / daily (local day) rollups."""
    limit = MAX_SPAN.get(resolution)
    hint = ""
    if limit is not None:
        hint = f" for resolution={resolution.value}; use resolution={_COARSER[resolution]}"
    start_at, end_at = period(start, end, limit, hint)
    _station_or_404(store, station_id)
    points = store.series(station_id, start_at, end_at, resolution)
    return ReadingSeries(
        station_id=station_id, resolution=resolution, start=start_at, end=end_at, points=points
    )


@router.get("/stats", responses={422: {"model": Problem}})
def get_stats(
    store: StoreDep,
    start: StartParam = None,
    end: EndParam = None,
    station_id: Annotated[list[str] | None, Query(description="repeat to choose stations")] = None,
) -> list[StationStats]:
    """Per-station mean, min, max, count and data availability over [start, end)."""
    start_at, end_at = period(start, end)
    return store.stats(start_at, end_at, station_id)


@router.get("/alarms", responses={422: {"description": "a parameter is out of range"}})
def list_alarms(
    store: StoreDep,
    state: Annotated[
        Literal["open", "all"],
        Query(description="open: active alarms, acknowledged or not; all: cleared ones too"),
    ] = "open",
    station_id: Annotated[str | None, Query(description="only this station's alarms")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ALARMS, description="most alarms returned")] = 1000,
) -> list[Alarm]:
    """Alarm episodes, the most recently opened first (what the duty officer must look at)."""
    return store.alarms(state=state, station_id=station_id, limit=limit)


def _no_alarm(alarm_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"alarm {alarm_id}: no such alarm")


def _alarm_write(write: AlarmWrite, alarm_id: int, user: User, note: str | None) -> Alarm:
    """Apply one person's action as *user*, now; the alarm as stored afterwards, or 404."""
    alarm = write(alarm_id, user.name, datetime.now(UTC), note)
    if alarm is None:
        raise _no_alarm(alarm_id)
    return alarm


@router.get("/alarms/{alarm_id}", responses={404: {"model": Problem}})
def get_alarm(alarm_id: AlarmId, store: StoreDep) -> AlarmWithHistory:
    """One alarm with its history: who acknowledged, cleared and commented, and when."""
    alarm = store.alarm(alarm_id)
    if alarm is None:
        raise _no_alarm(alarm_id)
    return AlarmWithHistory(**alarm.model_dump(), history=store.alarm_history(alarm_id))


@router.post("/alarms/{alarm_id}/ack", responses=WRITE_ERRORS)
def acknowledge_alarm(
    alarm_id: AlarmId, store: StoreDep, user: Officer, body: ActionBody = None
) -> Alarm:
    """Acknowledge the alarm, recording who and when; it stays active until it clears.

    An alarm acknowledged before keeps its first acknowledgement and is answered as it is;
    the comment, if any, is then kept in its history.
    """
    comment = body.comment if body else None
    return _alarm_write(store.acknowledge_alarm, alarm_id, user, comment)


@router.post("/alarms/{alarm_id}/clear", responses=WRITE_ERRORS)
def clear_alarm(
    alarm_id: AlarmId, store: StoreDep, user: Officer, body: ActionBody = None
) -> Alarm:
    """Clear an active alarm by hand, recording who and when; the detectors do not reopen it.

    A cleared alarm is answered unchanged (the comment, if any, is then not kept).
    """
    comment = body.comment if body else None
    return _alarm_write(store.clear_alarm, alarm_id, user, comment)


@router.post(
    "/alarms/{alarm_id}/comments", status_code=status.HTTP_201_CREATED, responses=WRITE_ERRORS
)
def comment_alarm(alarm_id: AlarmId, body: AlarmComment, store: StoreDep, user: Officer) -> Alarm:
    """Add a comment to the alarm's history (what was found on site, who was called)."""
    return _alarm_write(store.comment_alarm, alarm_id, user, body.text)
