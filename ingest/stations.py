"""The stations the ingest knows, cached: one store query per refresh, not one per reading."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from radmon.models import Station

log = logging.getLogger(__name__)

# An unknown id re-reads the store at most this often: a flood of messages for a station
# that does not exist costs one query a second, and a station just imported waits no longer.
_UNKNOWN_REFRESH_S = 1.0


class StationDirectory:
    """Looks stations up by id, re-reading the store at most every *refresh_s*.

    So a station imported or changed while ``radmon serve`` runs (its calibration, its time
    zone) counts within seconds, and a flood of messages for an unknown station cannot turn
    into a flood of queries. If the store cannot be read, the stations last read stay.
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
        if self._stale(self._refresh_s):
            self.reload()
        found = self._by_id.get(station_id)
        if found is None and self._stale(_UNKNOWN_REFRESH_S):
            self.reload()  # a station imported a moment ago: not a dead letter for 10 s
            found = self._by_id.get(station_id)
        return found

    def reload(self) -> None:
        with self._lock:
            try:
                loaded = self._load()
            except SQLAlchemyError:
                if self._loaded_at is None:
                    raise  # nothing to go on
                log.warning("cannot re-read the stations; keeping those read before", exc_info=True)
            else:
                self._by_id = {s.station_id: s for s in loaded}
            self._loaded_at = self._clock()

    def _stale(self, after_s: float) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= after_s
