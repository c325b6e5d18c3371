"""The stations layer as GeoJSON, shared by the API and the page's first paint.

Every open map polls it every few seconds, so what it derives from a ``Store.latest`` answer
is kept while that answer is unchanged (the store marks it with a ``version``) and no station
has aged past its offline limit: an unchanged poll then costs no model building, no JSON
encoding and no hashing. The body is built from plain data (5 ms for 1,000 stations, where
building the pydantic models one by one took 25 ms) with the schema's field order and pydantic's
own serialiser, so it is byte for byte what ``StationCollection.model_dump_json`` gives: one
ETag serves the page and the API. Under live ingest the store's answer changes between any two
polls; ``live_layer`` then lets every poll within half a second share one answer.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from dashboard.schemas import StationCollection
from radmon.models import LatestReading
from radmon.store import Store

# A station is offline once it has missed this many reporting intervals.
OFFLINE_AFTER_INTERVALS = 3
# How old a layer the live map may be answered: the page polls every 4 s, so a reading is on
# the map within 4.5 s, and every poll in between, from any number of maps, shares one query.
LIVE_MAX_AGE_S = 0.5


def _allowed(latest: LatestReading) -> timedelta:
    return timedelta(seconds=OFFLINE_AFTER_INTERVALS * latest.station.interval_s)


def is_online(latest: LatestReading, now: datetime) -> bool:
    if latest.time is None:
        return False
    return now - latest.time <= _allowed(latest)


@dataclass(frozen=True)
class StationsLayer:
    """The layer as plain GeoJSON features, its encoded body and the body's strong ETag."""

    features: list[dict[str, Any]]
    body: bytes
    etag: str
    valid_until: datetime | None  # when the first online station turns offline, if ever


@dataclass(frozen=True)
class _Derived:
    layer: StationsLayer
    collection: StationCollection


@dataclass(frozen=True)
class _Encoded:
    collection: StationCollection
    body: bytes
    etag: str


@dataclass(frozen=True)
class _Layered:
    version: object | None
    reported: frozenset[str]
    computed_at: datetime
    layer: StationsLayer
    made: list[tuple[LatestReading, dict[str, Any]]]  # which item each feature was made of


@dataclass(frozen=True)
class _Live:
    store: Store
    reported: frozenset[str]
    made: float  # time.monotonic() when store.latest() was asked
    layer: StationsLayer


_lock = threading.Lock()
_live_lock = threading.Lock()
_live: _Live | None = None
_derived: _Derived | None = None
_encoded: _Encoded | None = None
_layered: _Layered | None = None
# Serialises datetimes, enums and tuples exactly as the models' model_dump_json does.
_JSON = TypeAdapter(dict[str, Any])


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _still_valid(
    version: object | None,
    known_version: object,
    computed_at: datetime,
    valid_until: datetime | None,
    now: datetime,
) -> bool:
    return (
        version is not None
        and known_version is version
        and computed_at <= now
        and (valid_until is None or now <= valid_until)
    )


NOBODY: frozenset[str] = frozenset()


def reported_offline(ingest: Any) -> frozenset[str]:
    """The stations the edges report offline (``ingest/links.py``); none without MQTT."""
    return ingest.links.offline() if ingest is not None else NOBODY


def _liveness(
    latest: list[LatestReading], now: datetime, reported: frozenset[str]
) -> tuple[list[bool], datetime | None]:
    """Each station's online flag, and the first moment one of them turns offline."""
    flags = []
    valid_until: datetime | None = None
    for item in latest:
        online = is_online(item, now) and item.station.station_id not in reported
        if online and item.time is not None:
            turns = item.time + _allowed(item)
            valid_until = turns if valid_until is None else min(valid_until, turns)
        flags.append(online)
    return flags, valid_until


def _plain_feature(item: LatestReading, online: bool, reported: bool) -> dict[str, Any]:
    # Keys in the order of the schema's fields, so the bytes equal model_dump_json's.
    station = item.station
    return {
        "type": "Feature",
        "id": station.station_id,
        "geometry": {"type": "Point", "coordinates": (station.lon, station.lat)},
        "properties": {
            "station_id": station.station_id,
            "name": station.name,
            "dose_rate_nsv_h": item.dose_rate_nsv_h,
            "time": item.time,
            "severity": item.severity,
            "online": online,
            "district": station.district,
            "probe_model": station.probe_model,
            "interval_s": station.interval_s,
            "timezone": station.timezone,
            "elevation_m": station.elevation_m,
            "reported_offline": reported,
        },
    }


def stations_layer(
    latest: list[LatestReading], now: datetime, reported: frozenset[str] = NOBODY
) -> StationsLayer:
    """The layer the map draws and polls, reused while *latest*, the stations *reported*
    offline by their edges and every liveness hold."""
    global _layered
    version = getattr(latest, "version", None)
    known = _layered
    if (
        known is not None
        and known.reported is reported
        and _still_valid(version, known.version, known.computed_at, known.layer.valid_until, now)
    ):
        return known.layer
    flags, valid_until = _liveness(latest, now, reported)
    # The store hands back the same object for a station that did not change: keep its feature
    # (fewer objects made per answer means fewer and shorter garbage collections in the node).
    before = {id(item): feature for item, feature in known.made} if known is not None else {}
    made = []
    features = []
    for item, online in zip(latest, flags, strict=True):
        feature = before.get(id(item))
        off = item.station.station_id in reported
        if (
            feature is None
            or feature["properties"]["online"] is not online
            or feature["properties"]["reported_offline"] is not off
        ):
            feature = _plain_feature(item, online, off)
        made.append((item, feature))
        features.append(feature)
    body = _JSON.dump_json({"type": "FeatureCollection", "features": features})
    layer = StationsLayer(features, body, _etag(body), valid_until)
    with _lock:
        _layered = _Layered(version, reported, now, layer, made)
    return layer


def live_layer(
    store: Store,
    now: datetime,
    reported: frozenset[str] = NOBODY,
    max_age_s: float = LIVE_MAX_AGE_S,
) -> StationsLayer:
    """The layer for polling maps: at most *max_age_s* old, so under live ingest (when the
    store's own cache cannot hold) all polls within that time share one ``store.latest()``."""
    global _live
    known = _live
    if _fresh(known, store, reported, now, max_age_s):
        return known.layer  # type: ignore[union-attr]
    with _live_lock:  # polls that arrive together wait for one query
        known = _live
        if _fresh(known, store, reported, now, max_age_s):
            return known.layer  # type: ignore[union-attr]
        made = time.monotonic()
        layer = stations_layer(store.latest(), now, reported)
        _live = _Live(store, reported, made, layer)
        return layer


def _fresh(
    known: _Live | None, store: Store, reported: frozenset[str], now: datetime, max_age_s: float
) -> bool:
    return (
        known is not None
        and known.store is store
        and known.reported is reported
        and time.monotonic() - known.made < max_age_s
        and (known.layer.valid_until is None or now <= known.layer.valid_until)
    )


def station_collection(latest: list[LatestReading], now: datetime) -> StationCollection:
    """One Point feature per station with its latest reading, alarm severity and liveness.

    Validated from ``stations_layer``'s body (7 ms for 1,000 stations, where building the
    models one by one took 25 ms), and ``encode`` of it answers that very body.
    """
    global _derived, _encoded
    layer = stations_layer(latest, now)
    known = _derived
    if known is not None and known.layer is layer:
        return known.collection
    collection = StationCollection.model_validate_json(layer.body)
    with _lock:
        _derived = _Derived(layer, collection)
        _encoded = _Encoded(collection, layer.body, layer.etag)
    return collection


def encode(collection: StationCollection) -> tuple[bytes, str]:
    """The JSON body and its strong ETag (a hash of exactly those bytes)."""
    global _encoded
    known = _encoded
    if known is not None and known.collection is collection:
        return known.body, known.etag
    body = collection.model_dump_json().encode()
    etag = _etag(body)
    with _lock:
        _encoded = _Encoded(collection, body, etag)
    return body, etag
