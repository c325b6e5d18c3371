"""The whole chain in one test: probe → edge → broker → central ingest → store.

Two pymodbus servers stand in for probes with shipped profiles (a calibrated float32 probe in
µSv/h, a GM counter in cps); ``run_edge`` polls them and forwards to a private Mosquitto; the
central ``MqttIngest`` writes into PostgreSQL. An independent MQTT subscriber records what the
edge published, so the store can be compared with it reading by reading.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ingest.edge.spool import Spool
from ingest.mqtt import MqttIngest
from radmon.config import load_settings
from radmon.models import Station
from radmon.store import Store
from tests.broker import Broker, prepare_session
from tests.ingest.test_edge_helpers import (
    PREFIX,
    ModbusProbe,
    Subscriber,
    edge_settings,
    float32_words,
    run_edge_until,
    subscriber,
    uint32_words,
)
from tests.ingest.test_mqtt_ingest import running, wait_for

F32, GM = "QN-CHAIN-F32", "QN-CHAIN-GM"
PER_STATION = 8  # readings each probe must have delivered before the edge is stopped


def dose_messages(sub: Subscriber) -> int:
    return sum(1 for m in sub.snapshot() if m.topic.endswith("/dose"))


@pytest.mark.postgres
def test_probe_to_store_through_edge_broker_and_ingest(
    broker: Broker, pg_url: str, tmp_path: Path
) -> None:
    central = load_settings(
        database={"url": pg_url},
        mqtt={
            "host": broker.host,
            "port": broker.port,
            "topic_prefix": PREFIX,
            "client_id": "radmon-chain-central",
        },
        ingest={"batch_wait_s": 0.05},
    )
    store = Store.open(central)
    store.upgrade()
    store.upsert_stations(
        [
            Station(station_id=F32, name="Float32 probe", lat=20.95, lon=107.08),
            Station(station_id=GM, name="GM probe", lat=21.52, lon=107.97),
        ]
    )
    prepare_session(central)  # the broker queues for the ingest from the first reading on

    def delivered(sub: Subscriber) -> bool:
        return all(len(sub.readings(s)) >= PER_STATION for s in (F32, GM))

    async def probes_and_edge(sub: Subscriber) -> None:
        f32, gm = ModbusProbe(), ModbusProbe()
        await f32.start()
        await gm.start()
        await f32.set(0, float32_words(0.125))  # µSv/h → 125 nSv/h
        await f32.set(3, [(-52) & 0xFFFF])  # -5.2 °C
        await f32.set(4, [1234])  # 12.34 V
        await gm.set(100, uint32_words(1000))  # 10.00 cps → 4 µSv/h → 4000 nSv/h
        await gm.set(102, uint32_words(654321))  # counts
        edge = edge_settings(
            tmp_path,
            broker,
            [
                {
                    "station_id": F32,
                    "profile": "generic-float32",
                    "host": "127.0.0.1",
                    "port": f32.port,
                    "interval_s": 0.1,
                },
                {
                    "station_id": GM,
                    "profile": "gm-cps",  # 2.5 cps per µSv/h, from the profile
                    "host": "127.0.0.1",
                    "port": gm.port,
                    "interval_s": 0.1,
                },
            ],
            publish_batch=3,  # several readings per message: batches cross the chain too
        )
        try:
            await run_edge_until(edge, lambda: delivered(sub), 30, "readings from both probes")
        finally:
            await f32.stop()
            await gm.stop()

    ingest = MqttIngest(store, central)
    started = datetime.now(UTC)
    try:
        with subscriber(broker, "chain-witness") as sub, running(ingest):
            asyncio.run(probes_and_edge(sub))  # the edge stops gracefully: its spool drains
            finished = datetime.now(UTC)

            # The edge stops only once the broker has acknowledged all it spooled; the witness
            # and the ingest then receive the last messages: wait until both have all of them.
            def caught_up() -> bool:
                seen = dose_messages(sub)
                if ingest.counters.messages != seen:
                    return False
                time.sleep(0.5)  # nothing more is on its way to either of them
                return dose_messages(sub) == seen == ingest.counters.messages

            wait_for(caught_up, 30, "the ingest and the witness to hold every message")
            published = sub.readings()
    finally:
        store.close()

    spool = Spool(tmp_path / "spool.db", 10**8)
    try:
        assert len(spool) == 0, "the edge forwarded everything it polled"
    finally:
        spool.close()
    assert {r["station_id"] for r in published} == {F32, GM}
    assert len(published) >= 2 * PER_STATION

    # What the edge published, keyed as the store keys it.
    sent = {
        (r["station_id"], datetime.fromisoformat(r["time"].replace("Z", "+00:00"))): r
        for r in published
    }
    assert len(sent) == len(published), "a reading was published twice"

    reopened = Store.open(central)
    try:
        stored = {
            (r.station_id, r.time): r
            for station in (F32, GM)
            for r in reopened.readings(
                station, started - timedelta(seconds=1), finished + timedelta(seconds=1)
            )
        }
        assert reopened.dead_letters() == []
        assert reopened.dead_letter_counts() == {}
    finally:
        reopened.close()

    # Exactly the published readings, each once, with the right station and values in nSv/h.
    assert set(stored) == set(sent)
    with psycopg.connect(pg_url) as conn:
        rows, keys = conn.execute(
            "SELECT count(*), count(DISTINCT (station_id, time)) FROM readings"
        ).fetchone()
    assert rows == keys == len(sent)
    for (station, _), reading in stored.items():
        if station == F32:
            assert reading.dose_rate_nsv_h == pytest.approx(125.0)
            assert reading.temperature_c == pytest.approx(-5.2)
            assert reading.battery_v == pytest.approx(12.34)
        else:
            assert reading.dose_rate_nsv_h == pytest.approx(4000.0)
            assert reading.counts == 654321
        assert started <= reading.time <= finished
    assert ingest.counters.readings_new == len(sent)
    assert ingest.counters.rejected == 0
