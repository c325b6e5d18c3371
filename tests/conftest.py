"""Shared fixtures: settings on a temporary SQLite file, and throwaway PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from radmon.config import Settings, load_settings
from radmon.store import Store
from tests.broker import MOSQUITTO, Broker

PG_ADMIN = os.environ.get("RADMON_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_reachable() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}"


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    problem = _pg_reachable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)  # CI promises PostgreSQL: a skip there would hide a failure
        pytest.skip(problem)
    return PG_ADMIN


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    name = f"radmon_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def allow_connections(admin_url: str, database_url: str, allowed: bool) -> None:
    """Open or close *database_url* to new connections; closing also ends the current ones.

    A database outage as the application sees it, without stopping the shared server.
    """
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


def sqlite_settings(tmp_path: Path, **sections: dict) -> Settings:
    return load_settings(database={"url": f"sqlite:///{tmp_path}/radmon.db"}, **sections)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for each backend of the store contract suite."""
    if request.param == "sqlite":
        return sqlite_settings(tmp_path)
    url = request.getfixturevalue("pg_url")
    return load_settings(database={"url": url})


@pytest.fixture
def store(backend_settings: Settings) -> Iterator[Store]:
    """An upgraded, empty store on each backend."""
    opened = Store.open(backend_settings)
    opened.upgrade()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A private, persistent Mosquitto on a free loopback port (stop/start/restart it freely)."""
    if MOSQUITTO is None:
        if os.environ.get("CI"):
            pytest.fail("no mosquitto binary: CI promises one")
        pytest.skip("no mosquitto binary on PATH")
    running = Broker(tmp_path / "broker")
    running.start()
    try:
        yield running
    finally:
        running.stop()
