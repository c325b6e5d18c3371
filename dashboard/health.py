"""``/healthz``: for load balancers and service managers; never behind a login."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from dashboard.schemas import Health

router = APIRouter()


@router.get("/healthz", responses={503: {"model": Health}})
def healthz(request: Request, response: Response) -> Health:
    """``ok`` when the database answers, else 503 ``unavailable``."""
    if request.app.state.store.ping():
        return Health(status="ok")
    response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(status="unavailable")
