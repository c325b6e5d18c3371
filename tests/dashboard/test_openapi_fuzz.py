"""schemathesis over every operation of ``/openapi.json``: the real app, in-process, on SQLite.

Behind a login, signed in as an administrator so every operation gets past its role check; and
with open reads (``radmon demo``), its reads as an anonymous visitor. The answers must never be
a 5xx, and must match what the document promises: status codes, content types, headers, bodies.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import schemathesis
from argon2 import PasswordHasher
from hypothesis import HealthCheck, settings

from dashboard import create_app
from radmon.config import Settings, load_settings
from radmon.models import Alarm, AlarmState, Category, Severity
from radmon.store import Store
from radmon.users import add_user
from tests.dashboard.conftest import DEAD_TILES, TestClient, seed

ADMIN = ("admin1", "correct horse")
BASIC = {"Authorization": "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()}

# 422 is also how the API refuses a rule across parameters the schema cannot state (end after
# start, a period too long for the resolution, a page cursor naming no alarm): data the schema
# allows. Those answers carry a sentence; FastAPI's own refusals a list (see below).
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]


# Known and reported, in code outside the API's reads (remove an entry once it is fixed):
KNOWN = [
    # A 405 from Starlette lists only the methods of the route it matched: OPTIONS on
    # /api/v1/silences answers "Allow: GET" though POST is there too (RFC 9110 wants both).
    {
        "include-path": "/api/v1/silences",
        "checks": {"allow_header_conformance": {"enabled": False}},
    },
    # schemathesis turns the list of strings station_id into `true`, which it takes for a
    # boolean; in a query string it is the station "true", rightly accepted.
    {
        "include-path": "/api/v1/stats",
        "checks": {"negative_data_rejection": {"enabled": False}},
    },
]


def _config(mode: str) -> schemathesis.Config:
    operations = list(KNOWN)
    if mode == "open-reads":
        # The demo's visitor reads; a write without credentials is refused by the CSRF rules
        # before anything else (their own tests), so fuzzing it would only fuzz that refusal.
        operations.append({"exclude-method": "GET", "enabled": False})
    return schemathesis.Config.from_dict(
        {
            "checks": {
                "positive_data_acceptance": {"expected-statuses": ACCEPTED},
                # It resends every case without credentials and with wrong ones: half of the
                # file's time. test_every_operation_but_health_needs_credentials asks the same
                # once per operation.
                "ignored_auth": {"enabled": False},
            },
            "generation": {"max-examples": 25},
            "operations": operations,
        }
    )


def _rule_across_fields(error: dict) -> bool:
    """A model validator's refusal (one field or another, not both): FastAPI reports it as a
    value error of the whole body, a rule JSON Schema does not state here."""
    return error.get("type") == "value_error" and error.get("loc") == ["body"]


def schema_valid_input_is_not_refused_as_invalid(ctx, response, case) -> None:
    """A 422 to data generated from the schema must be for a rule across parameters (our
    sentence, or a model validator's), never a field refused outright: that would mean the
    document allows what the endpoint refuses."""
    if case.meta is None or case.meta.generation.mode.name != "POSITIVE":
        return
    if response.status_code != 422:
        return
    detail = response.json().get("detail")
    if isinstance(detail, list) and not all(_rule_across_fields(e) for e in detail):
        raise AssertionError(f"valid input refused: {detail}")


def _settings(tmp_path: Path) -> Settings:
    # The fuzzing sends wrong credentials on purpose, far more often than a person would:
    # the login throttle would soon answer everything here with 429
    return load_settings(
        database={"url": f"sqlite:///{tmp_path}/fuzz.db"},
        web={
            "tile_url": DEAD_TILES,
            "login_failures_per_address": 1_000_000,
            "login_failures_per_user": 1_000_000,
        },
    )


def _record_alarms(store: Store, now: datetime) -> None:
    store.record_alarms(
        [
            Alarm(
                station_id="HN-001",
                kind="threshold",
                category=Category.RADIOLOGICAL,
                severity=Severity.ALERT,
                opened_at=now - timedelta(hours=1),
                peak_nsv_h=612.5,
                baseline_nsv_h=95.5,
            ),
            Alarm(
                station_id="QN-002",
                kind="offline",
                category=Category.TECHNICAL,
                severity=Severity.INFO,
                opened_at=now - timedelta(hours=3),
                cleared_at=now - timedelta(hours=2),
                state=AlarmState.CLEARED_UNACK,
            ),
        ]
    )


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path]]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    store = Store.open(_settings(tmp_path))
    store.upgrade()
    now = datetime.now(UTC).replace(microsecond=0)
    seed(store, now)
    _record_alarms(store, now)
    # argon2 at its lowest cost: every request verifies the password, and what is fuzzed here
    # is the API, not the hash (radmon.users keeps and checks hashes with these parameters).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "radmon.users._hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        )
        add_user(store, ADMIN[0], "admin", ADMIN[1])
        yield store, tmp_path
    store.close()


@pytest.fixture(scope="module", params=["login", "open-reads"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def api_schema(mode: str, fuzz_store: tuple[Store, Path]):
    store, tmp_path = fuzz_store
    app = create_app(store, _settings(tmp_path), open_reads=mode == "open-reads")
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=_config(mode))


@pytest.fixture(scope="module")
def sent_headers(mode: str) -> dict[str, str]:
    """The administrator behind a login; nobody in the open demo (its visitor), since with
    credentials an open app answers exactly as a closed one."""
    return BASIC if mode == "login" else {}


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32 names each operation's subtest through ``Node._nodeid``, which
    pytest 9 no longer has: give it one to read (it only renames the report)."""
    request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_every_operation_keeps_its_documented_promises(
    case: schemathesis.Case, sent_headers: dict[str, str]
) -> None:
    case.call_and_validate(
        headers=sent_headers, additional_checks=[schema_valid_input_is_not_refused_as_invalid]
    )


def test_every_operation_but_health_needs_credentials(fuzz_store: tuple[Store, Path]) -> None:
    """What schemathesis' ignored_auth probes on every case, once per operation: no
    credentials and wrong ones are both a 401 behind a login."""
    store, tmp_path = fuzz_store
    with TestClient(create_app(store, _settings(tmp_path))) as client:
        paths = client.get("/openapi.json").json()["paths"]
        operations = [
            (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
            for path, item in paths.items()
            for method in item
            if path != "/healthz"
        ]
        assert len(operations) >= 15
        wrong = {"Authorization": BASIC["Authorization"][:-4] + "AAAA"}
        for method, path in operations:
            for headers in ({}, wrong):
                response = client.request(method, path, headers=headers, json={})
                assert response.status_code == 401, (method, path, headers, response.text)
