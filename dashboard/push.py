"""HTTP push: ``POST /api/v1/readings`` for probes that can only speak HTTP (CONTRACTS).

A station authenticates with its own bearer token (``radmon tokens add STATION``). The answer
comes after the commit, so a 200 means stored; a 503 means try again later. Refused items go to
the dead-letter store, exactly as on MQTT, through the same decoder.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response, status

from dashboard.access import CHALLENGE
from dashboard.schemas import Problem, PushedReading, PushResult
from ingest.payloads import Context, decode_message, oversized
from ingest.stations import StationDirectory
from radmon.models import DEAD_LETTER_MAX_PAYLOAD
from radmon.runtime import hand_over
from radmon.store import Store

router = APIRouter(prefix="/api/v1", tags=["ingest"])

# By number: Starlette has renamed both constants (RFC 9110), and either name warns somewhere.
_TOO_LARGE = 413
_UNPROCESSABLE = 422

_BODY_SCHEMA = {
    "oneOf": [
        PushedReading.model_json_schema(),
        {"type": "array", "items": PushedReading.model_json_schema()},
    ]
}


def _token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "a station bearer token is required", CHALLENGE
        )
    return token.strip()


class _TooLarge(Exception):
    def __init__(self, head: bytes, size: int | None) -> None:
        self.head, self.size = head, size


async def _body(request: Request, limit: int) -> bytes:
    """The body; :class:`_TooLarge` as soon as it passes *limit* (declared or streamed),
    with what was read of it, for the dead letter."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(b"", int(declared))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            raise _TooLarge(b"".join(chunks)[:DEAD_LETTER_MAX_PAYLOAD], None)
    return b"".join(chunks)


@router.post(
    "/readings",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _BODY_SCHEMA}}}
    },
    responses={
        401: {"model": Problem},
        413: {"model": Problem},
        422: {"model": PushResult, "description": "nothing in the body could be stored"},
        503: {"model": Problem, "description": "the database is away: retry later"},
    },
)
async def push_readings(
    request: Request,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
) -> PushResult:
    """Store one reading or an array of readings of the token's station."""
    store: Store = request.app.state.store
    limits = request.app.state.settings.ingest
    token = _token(authorization)
    station_id = await asyncio.to_thread(store.station_for_token, token)
    if station_id is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked token", CHALLENGE)
    client = request.client.host if request.client else "unknown"
    ctx = Context("http", client, datetime.now(UTC), limits)
    try:
        raw = await _body(request, limits.max_payload_bytes)
    except _TooLarge as exc:  # kept like any refusal, so the station's owner hears of it
        letter = oversized(exc.head, station_id, ctx, exc.size)
        await asyncio.to_thread(store.keep_dead_letters, [letter])
        raise HTTPException(_TOO_LARGE, letter.reason) from None
    stations: StationDirectory = request.app.state.stations
    decoded = await asyncio.to_thread(decode_message, raw, station_id, stations, ctx)
    added = await asyncio.to_thread(store.add_readings, decoded.readings)
    await hand_over(request.app.state.on_stored, added)
    await asyncio.to_thread(store.keep_dead_letters, decoded.letters)
    await hand_over(request.app.state.on_ahead, decoded.ahead)
    if decoded.letters and not decoded.readings:
        response.status_code = _UNPROCESSABLE
    return PushResult(
        station_id=station_id,
        accepted=len(decoded.readings),
        new=len(added),
        rejected=[d.reason for d in decoded.letters],
    )
