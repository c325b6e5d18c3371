"""Reads need a user or the loopback demo; writes need the matching role (HTTP Basic)."""

from __future__ import annotations

import base64
import inspect
from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI

from dashboard import access, create_app
from dashboard.access import require_read_access, require_role
from radmon.config import Settings
from radmon.store import Store
from radmon.users import User, add_user, set_disabled
from tests.dashboard.conftest import LOOPBACK, TestClient, csrf_headers

PASSWORD = "correct horse"
BASIC = 'Basic realm="radmon"'


def as_officer(user: Annotated[User, Depends(require_role("officer"))]) -> dict[str, str]:
    return {"name": user.name, "role": user.role}


def as_admin(user: Annotated[User, Depends(require_role("admin"))]) -> dict[str, str]:
    return {"name": user.name, "role": user.role}


def with_write_routes(app: FastAPI) -> FastAPI:
    """The real app plus two writes, behind read access as a write under /api/v1 would be."""
    read = [Depends(require_read_access)]
    app.add_api_route("/api/v1/test/ack", as_officer, methods=["POST"], dependencies=read)
    app.add_api_route("/api/v1/test/admin", as_admin, methods=["POST"], dependencies=read)
    return app


@pytest.fixture
def people(seeded: Store) -> Store:
    for name, role in [("viet", "viewer"), ("olga", "officer"), ("cuong", "commander")]:
        add_user(seeded, name, role, PASSWORD)
    add_user(seeded, "dung", "officer", "mật khẩu dài")
    return seeded


@pytest.fixture
def site(people: Store, settings: Settings) -> Iterator[TestClient]:
    """A server that is not the loopback demo: nothing is open."""
    with TestClient(with_write_routes(create_app(people, settings))) as client:
        yield client


@pytest.fixture
def demo(people: Store, settings: Settings) -> Iterator[TestClient]:
    with TestClient(
        with_write_routes(create_app(people, settings, open_reads=True)), base_url=LOOPBACK
    ) as client:
        yield client


def basic(name: str, password: str = PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# -- writes ----------------------------------------------------------------------------------


def test_anonymous_write_is_challenged(site: TestClient) -> None:
    response = site.post("/api/v1/test/ack")
    assert response.status_code == 401
    assert "Basic" in response.headers["www-authenticate"]


def test_anonymous_write_outside_the_read_router_gets_the_basic_challenge(
    people: Store, settings: Settings
) -> None:
    app = create_app(people, settings)
    app.add_api_route("/test/ack", as_officer, methods=["POST"])
    with TestClient(app) as client:
        response = client.post("/test/ack")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BASIC
    assert "sign in" in response.json()["detail"]


def test_a_viewer_may_not_write(site: TestClient) -> None:
    response = site.post("/api/v1/test/ack", headers=basic("viet"))
    assert response.status_code == 403
    assert response.json()["detail"] == "viet is viewer; this needs officer or above"


@pytest.mark.parametrize(("name", "role"), [("olga", "officer"), ("cuong", "commander")])
def test_an_officer_or_above_writes_as_themselves(site: TestClient, name: str, role: str) -> None:
    response = site.post("/api/v1/test/ack", headers=basic(name))
    assert response.status_code == 200
    assert response.json() == {"name": name, "role": role}


def test_a_commander_is_not_an_admin(site: TestClient) -> None:
    assert site.post("/api/v1/test/admin", headers=basic("cuong")).status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        basic("olga", "wrong password"),
        basic("nobody"),
        basic("olga", ""),
        {"Authorization": "Basic not*base64"},
        {"Authorization": "Basic " + base64.b64encode(b"no colon").decode()},
    ],
)
def test_bad_credentials_are_refused_with_a_challenge(
    site: TestClient, demo: TestClient, headers: dict[str, str]
) -> None:
    for client in (site, demo):  # the demo too: a failed sign-in is not silently 'demo'
        response = client.post("/api/v1/test/ack", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == BASIC


def test_a_disabled_user_is_refused(people: Store, site: TestClient) -> None:
    assert site.post("/api/v1/test/ack", headers=basic("olga")).status_code == 200
    set_disabled(people, "olga")
    assert site.post("/api/v1/test/ack", headers=basic("olga")).status_code == 401


def test_utf8_passwords_work_over_basic(site: TestClient) -> None:
    response = site.post("/api/v1/test/ack", headers=basic("dung", "mật khẩu dài"))
    assert response.status_code == 200
    assert response.json()["name"] == "dung"


def test_the_loopback_demo_writes_as_its_duty_officer(demo: TestClient) -> None:
    response = demo.post("/api/v1/test/ack", headers=csrf_headers(demo))
    assert response.status_code == 200
    assert response.json() == {"name": "demo", "role": "officer"}
    # a real user signing in to the demo is still themselves, with their own role
    assert demo.post("/api/v1/test/ack", headers=basic("cuong")).json()["name"] == "cuong"
    assert demo.post("/api/v1/test/ack", headers=basic("viet")).status_code == 403


def test_the_demo_user_is_only_an_officer(demo: TestClient) -> None:
    response = demo.post("/api/v1/test/admin", headers=csrf_headers(demo))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BASIC


def test_the_password_is_verified_once_per_request(
    site: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read access and the role both need the user; argon2 is too slow to run twice."""
    calls = []
    real = access.authenticate

    def counting(store: Store, name: str, password: str) -> User | None:
        calls.append((name, password))
        return real(store, name, password)

    monkeypatch.setattr(access, "authenticate", counting)
    assert site.post("/api/v1/test/ack", headers=basic("olga")).status_code == 200
    assert calls == [("olga", PASSWORD)]


def test_authentication_runs_off_the_event_loop() -> None:
    """FastAPI runs a plain ``def`` dependency in its threadpool; argon2 would block the loop."""
    assert not inspect.iscoroutinefunction(access.current_user)
    assert not inspect.iscoroutinefunction(require_role("officer"))


def test_a_role_typo_fails_when_the_route_is_declared() -> None:
    with pytest.raises(ValueError, match="role 'oficer'"):
        require_role("oficer")


# -- reads -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["viet", "olga"])
def test_any_user_may_read(site: TestClient, name: str) -> None:
    response = site.get("/api/v1/stations", headers=basic(name))
    assert response.status_code == 200
    ids = {f["properties"]["station_id"] for f in response.json()["features"]}
    assert "HN-001" in ids


def test_reads_without_a_user_are_challenged_for_both_schemes(site: TestClient) -> None:
    response = site.get("/api/v1/stations")
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer") and 'Basic realm="radmon"' in challenge
    assert "radmon users add" in response.json()["detail"]


def test_reads_with_a_wrong_password_are_refused(site: TestClient, demo: TestClient) -> None:
    assert site.get("/api/v1/stations", headers=basic("viet", "nope nope")).status_code == 401
    assert demo.get("/api/v1/stations", headers=basic("viet", "nope nope")).status_code == 401


def test_demo_reads_stay_open(demo: TestClient) -> None:
    assert demo.get("/api/v1/stations").status_code == 200


def test_a_bearer_header_is_not_taken_for_a_user(site: TestClient) -> None:
    response = site.get("/api/v1/stations", headers={"Authorization": "Bearer rmst_x"})
    assert response.status_code == 401


def test_openapi_documents_http_basic(site: TestClient) -> None:
    spec = site.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "basic"}.items() <= next(iter(schemes.values())).items()
