"""``radmon serve`` with ``GET /api/v1/stations`` answered by ``dashboard.geojson.live_layer``.

The changes proposed for dashboard/api.py (and, with ``--gc-freeze``, for radmon/runtime.py),
applied in memory so the dashboard benchmarks can measure them beside the node as committed:
the same app, routes and uvicorn as ``radmon serve``, except that this one route, placed first,
answers from a layer at most ``LIVE_MAX_AGE_S`` old, shared by every poll within that time;
``--gc-freeze`` also moves every object alive once the app is made out of the garbage
collector's reach (``gc.freeze()``), so a full collection no longer walks the whole startup
heap (about 140 ms, in the middle of some poll, every few seconds of live ingest). Once the
committed code does this itself, the nodes are the same.

    python -m bench.dashboard_node [--gc-freeze] --config FILE   # as radmon serve --config FILE
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Response, status
from fastapi.routing import APIRoute

import dashboard
from dashboard.access import require_read_access
from dashboard.api import GEOJSON, StoreDep
from dashboard.geojson import live_layer
from dashboard.http_cache import not_modified


def list_stations(
    store: StoreDep, if_none_match: Annotated[str | None, Header()] = None
) -> Response:
    """Every station with its latest reading, as GeoJSON; cheap to poll with If-None-Match."""
    layer = live_layer(store, datetime.now(UTC))
    headers = {"ETag": layer.etag, "Cache-Control": "no-cache"}
    if not_modified(if_none_match, layer.etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=layer.body, media_type=GEOJSON, headers=headers)


def with_proposed_route(create_app: Any, freeze: bool = False) -> Any:
    def create(*args: Any, **kwargs: Any) -> FastAPI:
        app = create_app(*args, **kwargs)
        route = APIRoute(
            "/api/v1/stations",
            list_stations,
            methods=["GET"],
            dependencies=[Depends(require_read_access)],
        )
        app.router.routes.insert(0, route)  # matched before the committed one
        if freeze:
            gc.freeze()  # the node's tasks are made; uvicorn starts next
        return app

    return create


def main(argv: Sequence[str] | None = None) -> None:
    from radmon.cli import main as radmon_main

    args = list(sys.argv[1:] if argv is None else argv)
    freeze = "--gc-freeze" in args
    if freeze:
        args.remove("--gc-freeze")
    dashboard.create_app = with_proposed_route(dashboard.create_app, freeze)
    sys.argv = ["radmon", "serve", *args]
    radmon_main()


if __name__ == "__main__":
    main()
