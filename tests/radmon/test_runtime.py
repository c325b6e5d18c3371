"""Process wiring: the live sink survives the database going away and coming back."""

from __future__ import annotations

import asyncio
import signal
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from radmon.config import load_settings
from radmon.models import Reading, Station
from radmon.runtime import is_loopback, keep_rollups_current, until_done
from radmon.store import Store
from radmon.store.schema import readings
from tests.conftest import allow_connections


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
    ],
)
def test_only_loopback_counts_as_local(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


@pytest.mark.postgres
def test_writes_wait_for_the_database_and_lose_nothing(
    pg_url: str, pg_admin_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store.open(load_settings(database={"url": pg_url}))
    store.upgrade()
    store.upsert_stations([Station(station_id="QN001", name="Hạ Long", lat=20.95, lon=107.08)])
    t0 = datetime(2026, 11, 21, tzinfo=UTC)
    batches = [
        [
            Reading(
                station_id="QN001", time=t0 + timedelta(minutes=10 * b + i), dose_rate_nsv_h=90.0
            )
            for i in range(10)
        ]
        for b in range(6)
    ]

    def outage(allow: bool) -> None:
        allow_connections(pg_admin_url, pg_url, allow)

    async def scenario() -> None:
        stop = asyncio.Event()
        await until_done(store.write_readings, batches[0], stop=stop)
        outage(allow=False)
        restore = threading.Timer(2.0, outage, kwargs={"allow": True})
        restore.start()
        try:
            for batch in batches[1:]:
                await asyncio.wait_for(
                    until_done(store.write_readings, batch, stop=stop), timeout=60
                )
        finally:
            restore.join()

    try:
        asyncio.run(scenario())
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(readings)).scalar_one() == 60
        assert "store write failed; retrying" in caplog.text  # the outage was real
    finally:
        outage(allow=True)
        store.close()


@pytest.mark.postgres
def test_the_node_keeps_rollups_current(pg_url: str) -> None:
    store = Store.open(load_settings(database={"url": pg_url}))
    store.upgrade()
    store.upsert_stations([Station(station_id="QN001", name="Hạ Long", lat=20.95, lon=107.08)])
    t0 = datetime(2026, 11, 21, tzinfo=UTC)
    store.write_readings(
        [
            Reading(station_id="QN001", time=t0 + timedelta(minutes=m), dose_rate_nsv_h=90.0)
            for m in range(180)
        ]
    )

    def hourly_counts() -> list[int]:
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT n FROM readings_hourly ORDER BY bucket")
            return [n for (n,) in rows]

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(keep_rollups_current(store, stop, every_s=0.05))
        for _ in range(200):
            if hourly_counts() == [60, 60, 60]:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    try:
        asyncio.run(scenario())
        assert hourly_counts() == [60, 60, 60]
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM rollup_dirty").scalar() == 0
    finally:
        store.close()


@pytest.mark.postgres
def test_a_node_whose_task_dies_stops_non_zero(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead task once left serve answering /healthz while nothing was done: it now stops
    the node, and the exit is non-zero, so that the service manager starts it again."""
    from radmon import runtime
    from tests.broker import free_port

    async def broken(store: Store, stop: asyncio.Event, every_s: float = 60.0) -> None:
        raise RuntimeError("a bug in the rollups")

    monkeypatch.setattr(runtime, "keep_rollups_current", broken)
    settings = load_settings(
        database={"url": pg_url},
        mqtt={"enabled": False},
        detection={"enabled": False},
        web={"port": free_port()},
    )
    store = Store.open(settings)
    store.upgrade()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(SystemExit, match="rollups failed"):
            asyncio.run(asyncio.wait_for(runtime.run_node(store, settings, open_reads=False), 20))
    finally:  # the node quiets SIGINT and SIGTERM for its own stop: not for the test runner
        for number, handler in handlers.items():
            signal.signal(number, handler)
