"""``/metrics``: counts for monitoring, in the Prometheus text format.

Dead letters are counted from the store (they survive restarts); the live ingest's counters
come from this process. Open to loopback clients (a local agent scrapes it); others need read
access like the API.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from dashboard.access import current_user, require_read_access
from radmon.runtime import is_loopback
from radmon.users import User

router = APIRouter()

_INGEST = (
    ("messages", "counter", "MQTT messages committed"),
    ("readings_stored", "counter", "readings committed (redeliveries included)"),
    ("readings_new", "counter", "readings that were new to the store"),
    ("rejected", "counter", "items refused to the dead-letter store"),
    ("batches", "counter", "batches committed"),
    ("connects", "counter", "connections to the broker"),
)


def _number(value: float) -> str:
    """Every digit of a count: ``:g`` keeps six, so 1,498,261 readings read as 1.49826e+06,
    a counter that stood still for ten readings at a time and a scraper that never saw the
    last of them."""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _lines(name: str, kind: str, text: str, samples: list[tuple[str, float]]) -> list[str]:
    head = [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    return head + [f"{name}{labels} {_number(value)}" for labels, value in samples]


@router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
def metrics(request: Request, user: Annotated[User | None, Depends(current_user)]) -> str:
    if not (request.client and is_loopback(request.client.host)):
        require_read_access(request, user)
    counts = request.app.state.store.dead_letter_counts()
    out = _lines(
        "radmon_dead_letters",
        "gauge",
        "dead letters kept, by source",
        [(f'{{source="{source}"}}', n) for source, n in sorted(counts.items())],
    )
    ingest = request.app.state.ingest
    if ingest is not None:
        counters = ingest.counters
        for field, kind, text in _INGEST:
            value = getattr(counters, field)
            out += _lines(f"radmon_mqtt_{field}_total", kind, text, [("", value)])
        out += _lines(
            "radmon_mqtt_connected", "gauge", "1 while connected", [("", counters.connected)]
        )
        links = ingest.links.counts()
        out += _lines(
            "radmon_edges",
            "gauge",
            "edges by the state their status topic reports",
            [
                ('{state="online"}', links["edges_online"]),
                ('{state="offline"}', links["edges_offline"]),
            ],
        )
        out += _lines(
            "radmon_stations_reported_offline",
            "gauge",
            "stations whose edge reports the probe, or itself, offline",
            [("", links["stations_reported_offline"])],
        )
    return "\n".join(out) + "\n"
