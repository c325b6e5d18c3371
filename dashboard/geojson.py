"""The stations layer as GeoJSON, shared by the API and the page's first paint."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from dashboard.schemas import PointGeometry, StationCollection, StationFeature, StationProperties
from radmon.models import LatestReading

# A station is offline once it has missed this many reporting intervals.
OFFLINE_AFTER_INTERVALS = 3


def is_online(latest: LatestReading, now: datetime) -> bool:
    if latest.time is None:
        return False
    allowed = timedelta(seconds=OFFLINE_AFTER_INTERVALS * latest.station.interval_s)
    return now - latest.time <= allowed


def station_collection(latest: list[LatestReading], now: datetime) -> StationCollection:
    """One Point feature per station with its latest reading, alarm severity and liveness."""
    features = []
    for item in latest:
        station = item.station
        features.append(
            StationFeature(
                id=station.station_id,
                geometry=PointGeometry(coordinates=(station.lon, station.lat)),
                properties=StationProperties(
                    station_id=station.station_id,
                    name=station.name,
                    dose_rate_nsv_h=item.dose_rate_nsv_h,
                    time=item.time,
                    severity=item.severity,
                    online=is_online(item, now),
                    district=station.district,
                    probe_model=station.probe_model,
                    interval_s=station.interval_s,
                    timezone=station.timezone,
                    elevation_m=station.elevation_m,
                ),
            )
        )
    return StationCollection(features=features)


def encode(collection: StationCollection) -> tuple[bytes, str]:
    """The JSON body and its strong ETag (a hash of exactly those bytes)."""
    body = collection.model_dump_json().encode()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
