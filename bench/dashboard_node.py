"""``radmon serve`` with ``GET /api/v1/stations`` answered by ``dashboard.geojson.live_layer``.

The change proposed for dashboard/api.py, applied in memory so the dashboard benchmarks can
measure it beside the node as committed (``--proposed-api``): the same app, routes and
uvicorn as ``radmon serve``, except that this one route, placed first, answers from a layer at
most ``LIVE_MAX_AGE_S`` old, shared by every poll within that time. Once api.py does this
itself, the two nodes are the same.

    python -m bench.dashboard_node --config FILE      # as radmon serve --config FILE
"""

from __future__ import annotations

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


def with_proposed_route(create_app: Any) -> Any:
    def create(*args: Any, **kwargs: Any) -> FastAPI:
        app = create_app(*args, **kwargs)
        route = APIRoute(
            "/api/v1/stations",
            list_stations,
            methods=["GET"],
            dependencies=[Depends(require_read_access)],
        )
        app.router.routes.insert(0, route)  # matched before the committed one
        return app

    return create


def main(argv: Sequence[str] | None = None) -> None:
    from radmon.cli import main as radmon_main

    dashboard.create_app = with_proposed_route(dashboard.create_app)
    sys.argv = ["radmon", "serve", *(sys.argv[1:] if argv is None else argv)]
    radmon_main()


if __name__ == "__main__":
    main()
