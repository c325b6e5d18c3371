"""Two ingest workers in one ``mqtt.shared_group`` split the stream: each message is stored by
exactly one of them, and together they store every reading once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ingest.mqtt import MqttIngest
from radmon.config import Settings, load_settings
from radmon.models import Station
from radmon.store import Store
from tests.broker import Broker, prepare_session, publish_all
from tests.ingest.test_mqtt_ingest import running, wait_for

N = 400
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=2)
STATIONS = [Station(station_id=f"QN{i:03d}", name=f"Trạm {i}", lat=21.0, lon=107.0) for i in (1, 2)]


def _worker_settings(broker: Broker, pg_url: str, client_id: str) -> Settings:
    return load_settings(
        database={"url": pg_url},
        mqtt={
            "host": broker.host,
            "port": broker.port,
            "client_id": client_id,
            "shared_group": "ingest",
        },
        ingest={"batch_wait_s": 0.02, "receive_maximum": 10},
    )


@pytest.mark.postgres
def test_two_workers_in_a_shared_group_split_the_load(
    broker: Broker, pg_url: str, tmp_path: Path
) -> None:
    first_settings = _worker_settings(broker, pg_url, "radmon-ingest-a")
    second_settings = _worker_settings(broker, pg_url, "radmon-ingest-b")
    first_store = Store.open(first_settings)  # two processes: two stores, one database
    first_store.upgrade()
    first_store.upsert_stations(STATIONS)
    second_store = Store.open(second_settings)
    for settings in (first_settings, second_settings):
        prepare_session(settings)  # both are members of the group before anything is sent

    payloads = [
        (
            f"radmon/v1/{STATIONS[i % 2].station_id}/dose",
            json.dumps(
                {
                    "time": (T0 + timedelta(minutes=i)).isoformat(),
                    "dose_rate": 80 + i % 40,
                    "unit": "nSv/h",
                }
            ).encode(),
        )
        for i in range(N)
    ]
    first, second = (
        MqttIngest(first_store, first_settings),
        MqttIngest(second_store, second_settings),
    )
    try:
        with running(first), running(second):
            wait_for(
                lambda: first.counters.connected and second.counters.connected, 15, "both workers"
            )
            publish_all(broker, payloads)
            wait_for(
                lambda: first.counters.messages + second.counters.messages >= N,
                60,
                "every message",
            )
    finally:
        first_store.close()
        second_store.close()

    # Both took part, and no message went to both (without the group, each gets all N).
    assert first.counters.messages > 0 and second.counters.messages > 0
    assert first.counters.messages + second.counters.messages == N
    assert first.counters.readings_new > 0 and second.counters.readings_new > 0
    assert first.counters.readings_new + second.counters.readings_new == N
    assert first.counters.rejected == second.counters.rejected == 0

    with psycopg.connect(pg_url) as conn:
        rows, keys = conn.execute(
            "SELECT count(*), count(DISTINCT (station_id, time)) FROM readings"
        ).fetchone()
        letters = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
        stored = conn.execute(
            "SELECT station_id, time, dose_rate_nsv_h FROM readings ORDER BY time"
        ).fetchall()
    assert rows == keys == N
    assert letters == 0
    assert [(s, t, v) for s, t, v in stored] == [
        (STATIONS[i % 2].station_id, T0 + timedelta(minutes=i), float(80 + i % 40))
        for i in range(N)
    ]
