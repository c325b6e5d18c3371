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
from pydantic import TypeAdapter

from dashboard import csv_export
from dashboard.access import require_read_access, require_role
from dashboard.geojson import live_layer, reported_offline
from dashboard.http_cache import conditional, not_modified
from dashboard.params import parse_instant, period
from dashboard.schemas import (
    SIGN_IN_ERRORS,
    AlarmAction,
    AlarmComment,
    AlarmWithHistory,
    Problem,
    ReadingSeries,
    StationCollection,
    Unprocessable,
)
from radmon.models import Alarm, Category, Resolution, Severity, Station, StationStats
from radmon.store import Store
from radmon.store.schema import MAX_ROW_ID
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
FormatParam = Annotated[
    Literal["json", "csv"],
    Query(
        alias="format",
        description="json, or csv: a file to download (UTF-8, times in UTC; a text cell that "
        "would start a spreadsheet formula is prefixed with ')",
    ),
]
IfNoneMatch = Annotated[str | None, Header(description="the ETag of the answer the client has")]

# Most points one page of a series holds when the client asks for pages (limit).
MAX_POINTS = 50_000
# The next instant after a stored time: both databases keep microseconds.
_TICK = timedelta(microseconds=1)

CSV_CONTENT = {csv_export.CSV: {"schema": {"type": "string"}}}
LINK_HEADER = {
    "description": 'RFC 8288 <URL>; rel="next" when there is a next page',
    "schema": {"type": "string"},
}
ETAG_HEADER = {"description": "a hash of the body, for If-None-Match", "schema": {"type": "string"}}

AlarmId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the alarm's id")]

# Who may act on alarms: the duty officer and above (the loopback demo's ``demo`` user too).
Officer = Annotated[User, Depends(require_role("officer"))]
# (alarm id, who, when, note) -> the alarm as stored, or None when there is no such alarm
AlarmWrite = Callable[[int, str, datetime, str | None], Alarm | None]
ActionBody = Annotated[AlarmAction | None, Body()]
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the body cannot be read (not UTF-8 text)"},
    403: {"model": Problem, "description": "the user's role is below officer"},
    404: {"model": Problem, "description": "no such alarm"},
}

_ALARM_LIST = TypeAdapter(list[Alarm])

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_read_access)],
    responses=SIGN_IN_ERRORS,
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
    request: Request,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Every station with its latest reading, as GeoJSON; cheap to poll with If-None-Match."""
    offline = reported_offline(request.app.state.ingest)
    layer = live_layer(store, datetime.now(UTC), offline)  # shared by polls within 0.5 s
    headers = {"ETag": layer.etag, "Cache-Control": "no-cache"}
    if not_modified(if_none_match, layer.etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=layer.body, media_type=GEOJSON, headers=headers)


@router.get("/stations/{station_id}", responses={404: {"model": Problem}})
def get_station(station_id: str, store: StoreDep) -> Station:
    """A station's metadata."""
    return _station_or_404(store, station_id)


@router.get(
    "/stations/{station_id}/readings",
    response_model=ReadingSeries,
    responses={
        200: {"content": CSV_CONTENT, "headers": {"Link": LINK_HEADER}},
        404: {"model": Problem},
        422: {"model": Unprocessable},
    },
)
def get_readings(
    request: Request,
    station_id: str,
    store: StoreDep,
    start: StartParam = None,
    end: EndParam = None,
    resolution: Resolution = Resolution.RAW,
    after: Annotated[
        str | None,
        Query(description="ISO 8601 with a zone: only points after it (the previous page's last)"),
    ] = None,
    limit: Annotated[
        int | None,
        Query(ge=1, le=MAX_POINTS, description="most points; a Link header names the next page"),
    ] = None,
    output: FormatParam = "json",
) -> Response | ReadingSeries:
    """A station's series over [start, end): raw readings, or hourly / daily (local day) rollups.

    The period is bounded per resolution (31 days raw, a year hourly), which bounds what one
    answer reads; limit and after cut it into pages for clients that want smaller answers.
    CSV of raw readings is the detection input (time,station_id,dose_rate_nsv_h).
    """
    longest = MAX_SPAN.get(resolution)
    hint = ""
    if longest is not None:
        hint = f" for resolution={resolution.value}; use resolution={_COARSER[resolution]}"
    start_at, end_at = period(start, end, longest, hint)
    after_at = parse_instant("after", after) if after else None
    _station_or_404(store, station_id)
    points = store.series(station_id, _first(start_at, after_at, resolution), end_at, resolution)
    if after_at is not None:
        # a rollup bucket that began before the cursor still overlaps the shifted period
        points = [p for p in points if p.time > after_at]
    headers: dict[str, str] = {}
    if limit is not None and len(points) > limit:
        points = points[:limit]
        following = {
            "start": csv_export.utc_text(start_at),
            "end": csv_export.utc_text(end_at),
            "after": csv_export.utc_text(points[-1].time),
        }
        headers["Link"] = _next_link(request, following)
    if output == "csv":
        columns, rows = csv_export.series_rows(station_id, resolution, points)
        name = csv_export.filename(
            "readings",
            station_id,
            resolution.value,
            csv_export.compact(start_at),
            csv_export.compact(end_at),
        )
        return csv_export.attachment(csv_export.encode(columns, rows), name, headers)
    series = ReadingSeries(
        station_id=station_id, resolution=resolution, start=start_at, end=end_at, points=points
    )
    if headers:
        return Response(series.model_dump_json(), media_type="application/json", headers=headers)
    return series


def _first(start_at: datetime, after_at: datetime | None, resolution: Resolution) -> datetime:
    """Where the store's read begins: just after the cursor, for raw readings."""
    if after_at is None or resolution is not Resolution.RAW:
        return start_at
    return max(start_at, after_at + _TICK)


def _next_link(request: Request, params: dict[str, str | int]) -> str:
    """RFC 8288: this request with *params* replaced (repeated parameters are kept)."""
    url = request.url.include_query_params(**params)
    return f'<{url}>; rel="next"'


@router.get(
    "/stats",
    response_model=list[StationStats],
    responses={200: {"content": CSV_CONTENT}, 422: {"model": Unprocessable}},
)
def get_stats(
    store: StoreDep,
    start: StartParam = None,
    end: EndParam = None,
    station_id: Annotated[list[str] | None, Query(description="repeat to choose stations")] = None,
    output: FormatParam = "json",
) -> Response | list[StationStats]:
    """Per-station mean, min, max, count and data availability over [start, end)."""
    start_at, end_at = period(start, end)
    stats = store.stats(start_at, end_at, station_id)
    if output == "csv":
        names = {s.station_id: s.name for s in store.stations()}
        body = csv_export.encode(csv_export.STATS_COLUMNS, csv_export.stats_rows(stats, names))
        name = csv_export.filename(
            "stats", csv_export.compact(start_at), csv_export.compact(end_at)
        )
        return csv_export.attachment(body, name)
    return stats


@router.get(
    "/alarms",
    response_model=list[Alarm],
    responses={
        200: {
            "content": CSV_CONTENT,
            "headers": {"ETag": ETAG_HEADER, "Link": LINK_HEADER},
        },
        304: {"description": "unchanged since the ETag given in If-None-Match"},
        422: {
            "model": Unprocessable,
            "description": "a parameter is out of range, or before names no alarm",
        },
    },
)
def list_alarms(
    request: Request,
    store: StoreDep,
    state: Annotated[
        Literal["open", "all"],
        Query(description="open: active alarms, acknowledged or not; all: cleared ones too"),
    ] = "open",
    station_id: Annotated[str | None, Query(description="only this station's alarms")] = None,
    severity: Annotated[
        list[Severity] | None, Query(description="only these severities (repeat the parameter)")
    ] = None,
    category: Annotated[Category | None, Query(description="radiological or technical")] = None,
    acknowledged: Annotated[
        bool | None, Query(description="true: acknowledged ones only; false: not yet")
    ] = None,
    before: Annotated[
        int | None,
        Query(
            ge=1,
            le=MAX_ROW_ID,
            description="the id of the previous page's last alarm (the Link header's next page)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ALARMS, description="most alarms returned")] = 1000,
    output: FormatParam = "json",
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Alarm episodes, the most recently opened first (what the duty officer must look at).

    Pages follow (opened_at, id) descending, keyed by the last alarm's id: an alarm recorded
    while a client pages appears at most once. Cheap to poll with If-None-Match.
    """
    try:
        found = store.alarms(
            state=state,
            station_id=station_id,
            limit=limit + 1,
            severities=[s.value for s in severity] if severity else None,
            category=category.value if category else None,
            acknowledged=acknowledged,
            before=before,
        )
    except LookupError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    headers: dict[str, str] = {}
    if len(found) > limit:
        found = found[:limit]
        headers["Link"] = _next_link(request, {"before": found[-1].id or 0})
    if output == "csv":
        names = {s.station_id: s.name for s in store.stations()}
        rows = csv_export.alarm_rows(found, names)
        body = csv_export.encode(csv_export.ALARM_COLUMNS, rows)
        name = csv_export.filename("alarms", state, station_id or "")
        return csv_export.conditional_attachment(body, name, if_none_match, headers)
    return conditional(_ALARM_LIST.dump_json(found), "application/json", if_none_match, headers)


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
