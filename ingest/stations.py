"""The stations the ingest knows, cached: one store query per refresh, not one per reading."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from radmon.models import Station


class StationDirectory:
    """Looks stations up by id; an unknown id re-reads the store at most every *refresh_s*.

    So a station imported while ``radmon serve`` runs is accepted within seconds, and a
    flood of messages for an unknown station cannot turn into a flood of queries.
    """

    def __init__(
        self,
        load: Callable[[], list[Station]],
        refresh_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._by_id: dict[str, Station] = {}
        self._loaded_at: float | None = None

    def get(self, station_id: str) -> Station | None:
        found = self._by_id.get(station_id)
        if found is None and self._stale():
            self.reload()
            found = self._by_id.get(station_id)
        return found

    def reload(self) -> None:
        with self._lock:
            self._by_id = {s.station_id: s for s in self._load()}
            self._loaded_at = self._clock()

    def _stale(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= self._refresh_s
