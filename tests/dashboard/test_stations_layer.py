"""The stations layer the map polls: the schema's exact bytes, reused only while still true."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.geojson import (
    encode,
    is_online,
    live_layer,
    station_collection,
    stations_layer,
)
from dashboard.schemas import PointGeometry, StationCollection, StationFeature, StationProperties
from radmon.config import Settings
from radmon.models import Alarm, Category, Reading, Severity, Station
from radmon.store import Store
from tests.dashboard.conftest import XSS_NAME

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def any_store(backend_settings: Settings) -> Iterator[Store]:
    """A store on SQLite and, where it runs, on PostgreSQL (whose answers are cached)."""
    store = Store.open(backend_settings)
    store.upgrade()
    store.upsert_stations(
        [
            Station(station_id="A-1", name=XSS_NAME, lat=21.0, lon=107.1, interval_s=60),
            Station(station_id="A-2", name="Cô Tô", lat=20.98, lon=107.76, elevation_m=12.5),
            Station(station_id="A-3", name="never", lat=21.2, lon=107.3),
        ]
    )
    store.write_readings(
        [
            Reading(station_id="A-1", time=NOW - timedelta(seconds=150), dose_rate_nsv_h=101.5),
            Reading(station_id="A-2", time=NOW - timedelta(hours=2), dose_rate_nsv_h=88.0),
        ]
    )
    yield store
    store.close()


def _validated(latest: list, now: datetime) -> bytes:
    """The layer as the schema's models give it, validated field by field."""
    features = [
        StationFeature(
            id=item.station.station_id,
            geometry=PointGeometry(coordinates=(item.station.lon, item.station.lat)),
            properties=StationProperties(
                station_id=item.station.station_id,
                name=item.station.name,
                dose_rate_nsv_h=item.dose_rate_nsv_h,
                time=item.time,
                severity=item.severity,
                online=is_online(item, now),
                district=item.station.district,
                probe_model=item.station.probe_model,
                interval_s=item.station.interval_s,
                timezone=item.station.timezone,
                elevation_m=item.station.elevation_m,
            ),
        )
        for item in latest
    ]
    return StationCollection(features=features).model_dump_json().encode()


def test_layer_is_byte_for_byte_the_schema(any_store: Store) -> None:
    latest = any_store.latest()
    layer = stations_layer(latest, NOW)
    assert layer.body == _validated(latest, NOW)
    assert encode(station_collection(latest, NOW)) == (layer.body, layer.etag)
    assert [f["properties"]["online"] for f in layer.features] == [True, False, False]


def test_latest_is_reused_until_anything_is_written(
    any_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    if any_store.dialect == "postgresql":
        # Any commit moves the marker (other databases of the cluster too, so pin it here)...
        with any_store.engine.connect() as conn:
            before = any_store._latest_marker(conn)
        any_store.write_readings([Reading(station_id="A-2", time=NOW, dose_rate_nsv_h=88.0)])
        with any_store.engine.connect() as conn:
            assert any_store._latest_marker(conn) != before
        # ...and while it stands still, the answer is the same one, and so is its layer.
        monkeypatch.setattr(any_store, "_latest_marker", lambda conn: "0/PINNED")
        first, again = any_store.latest(), any_store.latest()
        assert again.version is first.version  # type: ignore[attr-defined]
        assert stations_layer(again, NOW) is stations_layer(first, NOW)
        assert [i.dose_rate_nsv_h for i in again] == [101.5, 88.0, None]
        monkeypatch.undo()

    any_store.write_readings([Reading(station_id="A-3", time=NOW, dose_rate_nsv_h=250.0)])
    after = {i.station.station_id: i for i in any_store.latest()}
    assert after["A-3"].dose_rate_nsv_h == 250.0
    assert after["A-1"].station.name == XSS_NAME

    any_store.record_alarms(
        [
            Alarm(
                station_id="A-2",
                kind="threshold",
                category=Category.RADIOLOGICAL,
                severity=Severity.ALERT,
                opened_at=NOW,
            )
        ]
    )
    assert {i.station.station_id: i.severity for i in any_store.latest()}["A-2"] is Severity.ALERT

    renamed_station = Station(station_id="A-1", name="renamed", lat=21.0, lon=107.1, interval_s=600)
    any_store.upsert_stations([renamed_station])
    renamed = {i.station.station_id: i for i in any_store.latest()}["A-1"]
    assert renamed.station.name == "renamed" and renamed.station.interval_s == 600


def test_layer_turns_a_station_offline_without_new_data(any_store: Store) -> None:
    latest = any_store.latest()
    before = stations_layer(latest, NOW)
    assert before.features[0]["properties"]["online"] is True
    later = stations_layer(latest, NOW + timedelta(seconds=31))  # 3 × 60 s after its reading
    assert later.features[0]["properties"]["online"] is False
    assert later.etag != before.etag


def test_live_layer_is_shared_for_its_max_age(any_store: Store) -> None:
    first = live_layer(any_store, NOW, max_age_s=60)
    any_store.write_readings([Reading(station_id="A-3", time=NOW, dose_rate_nsv_h=99.0)])
    assert live_layer(any_store, NOW, max_age_s=60) is first  # polls within it share one answer
    fresh = live_layer(any_store, NOW, max_age_s=0)
    assert fresh.features[2]["properties"]["dose_rate_nsv_h"] == 99.0
