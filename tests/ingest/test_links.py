"""The central hears the edges' status topics: a crashed edge's stations are reported offline."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dashboard.geojson import stations_layer
from ingest.links import OFFLINE, ONLINE, Links
from ingest.mqtt import MqttIngest
from radmon.config import load_settings
from radmon.models import LatestReading, Station
from radmon.store import Store
from tests.broker import Broker
from tests.ingest.test_edge_delivery import _edge_process
from tests.ingest.test_edge_helpers import (
    PREFIX,
    ModbusProbe,
    async_wait_until,
    float32_words,
    write_config,
)
from tests.ingest.test_mqtt_ingest import running

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def test_a_station_is_offline_by_its_own_status_or_its_edges() -> None:
    links = Links("radmon/v1")
    assert links.heard("radmon/v1/QN01/status", b"online", "edge-1", NOW)
    assert links.heard("radmon/v1/QN02/status", b"online", None, NOW)  # no edge named
    assert links.heard("radmon/v1/edge/edge-1/status", b"online", None, NOW)
    assert links.offline() == frozenset()
    same = links.offline()
    assert links.heard("radmon/v1/edge/edge-1/status", b"online", None, NOW)
    assert links.offline() is same  # nothing changed: the map's layer stays cached
    assert links.heard("radmon/v1/edge/edge-1/status", b"offline", None, NOW)  # the will
    assert links.offline() == {"QN01"}
    link = links.station("QN01")
    assert link is not None and (link.state, link.edge) == (OFFLINE, "edge-1")
    assert links.heard("radmon/v1/QN02/status", b"OFFLINE\n", None, NOW)
    assert links.offline() == {"QN01", "QN02"}
    assert links.counts() == {"edges_online": 0, "edges_offline": 1, "stations_reported_offline": 2}
    for topic, payload in [
        ("radmon/v1/QN03/status", b"maybe"),
        ("radmon/v1/a/b/c/status", b"online"),
        ("other/QN03/status", b"online"),
        ("radmon/v1/QN03/dose", b"online"),
    ]:
        assert not links.heard(topic, payload, None, NOW), topic
    assert links.station("QN03") is None


def test_the_state_follows_the_retained_messages_as_a_restarted_node_would_hear_them() -> None:
    # a cleared retained status, or a station status no longer naming its edge, kept the old
    # state until a restart, so two nodes disagreed
    links = Links("radmon/v1")
    links.heard("radmon/v1/QN01/status", b"online", "edge-1", NOW)
    links.heard("radmon/v1/edge/edge-1/status", b"offline", None, NOW)
    assert links.offline() == {"QN01"}
    links.heard("radmon/v1/edge/edge-1/status", b"", None, NOW)  # the retained will cleared
    assert links.offline() == frozenset() and links.counts()["edges_offline"] == 0
    links.heard("radmon/v1/edge/edge-1/status", b"offline", None, NOW)
    links.heard("radmon/v1/QN01/status", b"online", None, NOW)  # now spoken for by no edge
    assert links.offline() == frozenset()
    links.heard("radmon/v1/QN01/status", b"offline", None, NOW)
    links.heard("radmon/v1/QN01/status", b"", None, NOW)
    assert links.station("QN01") is None and links.offline() == frozenset()
    assert not links.heard("radmon/v1/" + "L" * 5000 + "/status", b"offline", None, NOW)
    # the retained statuses of a large network, as heard on every subscribe
    for i in range(20_000):
        links.heard(f"radmon/v1/S{i}/status", b"online", f"e{i % 20}", NOW)
    for e in range(20):
        links.heard(f"radmon/v1/edge/e{e}/status", b"offline" if e < 2 else b"online", None, NOW)
    assert len(links.offline()) == 2_000 and links.counts()["stations_reported_offline"] == 2_000


def test_the_map_greys_a_fresh_station_its_edge_reports_offline() -> None:
    station = Station(station_id="QN01", name="Hạ Long", lat=20.9, lon=107.0)
    latest = [LatestReading(station=station, time=NOW - timedelta(minutes=1), dose_rate_nsv_h=90)]
    [feature] = stations_layer(latest, NOW).features
    assert feature["properties"]["online"] and not feature["properties"]["reported_offline"]
    [feature] = stations_layer(latest, NOW, frozenset({"QN01"})).features
    assert not feature["properties"]["online"] and feature["properties"]["reported_offline"]


def test_an_edge_killed_takes_its_stations_offline_at_the_central(
    tmp_path: Path, broker: Broker
) -> None:
    settings = load_settings(
        database={"url": f"sqlite:///{tmp_path / 'central.db'}"},
        mqtt={"host": broker.host, "port": broker.port, "topic_prefix": PREFIX},
        ingest={"batch_wait_s": 0.05},
    )
    store = Store.open(settings)
    store.upgrade()
    store.upsert_stations([Station(station_id="QN-L", name="Uông Bí", lat=21.0, lon=106.8)])
    log = tmp_path / "edge.log"

    def state(ingest: MqttIngest) -> str | None:
        link = ingest.links.station("QN-L")
        return link.state if link else None

    async def scenario() -> None:
        probe = ModbusProbe()
        await probe.start()
        await probe.set(0, float32_words(0.1))
        probes = [
            {
                "station_id": "QN-L",
                "profile": "generic-float32",
                "host": "127.0.0.1",
                "port": probe.port,
                "interval_s": 0.2,
            }
        ]
        edge_id = {"id": "edge-links", "spool_path": str(tmp_path / "spool.db")}
        config = write_config(tmp_path / "edge.yaml", broker, {**edge_id, "probes": probes})
        ingest = MqttIngest(store, settings)
        edge = _edge_process(config, log)
        try:
            with running(ingest):
                await async_wait_until(lambda: state(ingest) == ONLINE, 20, "QN-L online")
                link = ingest.links.station("QN-L")
                assert link is not None and link.edge == "edge-links"
                edge.send_signal(signal.SIGKILL)  # no goodbye: the broker sends the will
                await asyncio.to_thread(edge.wait, 10)
                await async_wait_until(lambda: state(ingest) == OFFLINE, 10, "QN-L offline")
                assert ingest.links.offline() == {"QN-L"}
            restarted = MqttIngest(store, settings)  # a node started later hears it too
            with running(restarted):
                await async_wait_until(lambda: state(restarted) == OFFLINE, 10, "retained")
                edge = _edge_process(config, log)
                await async_wait_until(lambda: state(restarted) == ONLINE, 20, "back online")
                assert restarted.links.counts()["edges_online"] == 1
        finally:
            if edge.poll() is None:
                edge.kill()
            await probe.stop()
            store.close()

    asyncio.run(scenario())
