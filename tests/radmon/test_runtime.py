"""Process wiring: the live sink survives the database going away and coming back."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import func, select

from radmon.config import load_settings
from radmon.models import Reading, Station
from radmon.runtime import is_loopback, until_done
from radmon.store import Store
from radmon.store.schema import readings


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
    name = pg_url.rsplit("/", 1)[1]
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
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
            if not allow:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )

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
