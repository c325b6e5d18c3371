"""What the edges say of their links, heard on the status topics (CONTRACTS, docs/edge.md).

An edge publishes, retained, ``online``/``offline`` on ``{prefix}/edge/{edge}/status`` (its
will is ``offline``) and on ``{prefix}/{station}/status`` as each probe answers or stops; each
station status names its edge in the MQTT 5 user property ``edge``. A station is reported
offline when its own status says so or when the edge that last spoke for it is offline: after
an edge crashes, its stations' retained statuses still say ``online``.

The broker is the record: the statuses are retained, so a node that starts or reconnects hears
them all again on subscribing, and every node of a shared ingest hears every one (the status
subscription is never shared). Nothing is written to the store.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime

from radmon.models import STATION_ID_PATTERN

ONLINE = "online"
OFFLINE = "offline"
EDGE_PROPERTY = "edge"  # the user property a station status names its edge with
_ID = re.compile(STATION_ID_PATTERN)  # station and edge ids alike: anything else is no entry


@dataclass(frozen=True)
class Link:
    state: str  # ONLINE or OFFLINE
    since: datetime  # when this node heard it
    edge: str | None = None  # the edge that spoke for a station


class Links:
    """The latest status of every edge and station heard, safe to read from any thread.

    Each message updates what it touches only (an edge: its stations), so the retained
    statuses of a large network, heard again on every subscribe, cost time in proportion to
    their number; the set the map reads is made anew only when asked after a change.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._lock = threading.Lock()
        self._edges: dict[str, Link] = {}
        self._stations: dict[str, Link] = {}
        self._spoken_for: dict[str, set[str]] = {}  # edge → the stations whose status named it
        self._offline_now: set[str] = set()
        self._offline: frozenset[str] = frozenset()  # a copy of _offline_now, made when asked
        self._changed = False

    def topics(self) -> list[str]:
        """The subscriptions: every station's and every edge's status."""
        return [f"{self.prefix}/+/status", f"{self.prefix}/edge/+/status"]

    def is_status(self, topic: str) -> bool:
        head, _, rest = topic.partition(self.prefix + "/")
        return not head and rest.endswith("/status")

    def heard(self, topic: str, payload: bytes, edge: str | None, now: datetime) -> bool:
        """Take one status message; False if it is not one (a wrong topic, id or payload).

        An empty payload (a retained status cleared) forgets the station or edge; a station
        status names its edge anew each time (none given: none), so the state always follows
        the broker's retained messages, as a node started now would hear them.
        """
        if not self.is_status(topic):
            return False
        parts = topic[len(self.prefix) + 1 :].split("/")
        state = payload.decode("utf-8", "replace").strip().lower()
        if state not in (ONLINE, OFFLINE, ""):
            return False
        if len(parts) == 3 and parts[0] == "edge" and _ID.match(parts[1]):
            with self._lock:
                self._edge_heard(parts[1], state, now)
        elif len(parts) == 2 and _ID.match(parts[0]):
            with self._lock:
                self._station_heard(parts[0], state, edge or None, now)
        else:
            return False
        return True

    def _edge_heard(self, edge: str, state: str, now: datetime) -> None:
        known = self._edges.get(edge)
        if not state:
            self._edges.pop(edge, None)
        elif known is None or known.state != state:
            self._edges[edge] = Link(state, now)
        else:
            return
        for station in self._spoken_for.get(edge, ()):
            self._judge(station)

    def _station_heard(self, station: str, state: str, edge: str | None, now: datetime) -> None:
        known = self._stations.pop(station, None)
        if known is not None and known.edge is not None:
            self._spoken_for.get(known.edge, set()).discard(station)
        if state:
            since = known.since if known is not None and known.state == state else now
            self._stations[station] = Link(state, since, edge)
            if edge is not None:
                self._spoken_for.setdefault(edge, set()).add(station)
        self._judge(station)

    def _judge(self, station: str) -> None:
        link = self._stations.get(station)
        edge = self._edges.get(link.edge) if link is not None and link.edge else None
        down = link is not None and (
            link.state == OFFLINE or (edge is not None and edge.state == OFFLINE)
        )
        if down != (station in self._offline_now):
            (self._offline_now.add if down else self._offline_now.discard)(station)
            self._changed = True

    def offline(self) -> frozenset[str]:
        """The stations reported offline; the same object until a status changes."""
        if self._changed:
            with self._lock:
                self._offline, self._changed = frozenset(self._offline_now), False
        return self._offline

    def station(self, station_id: str) -> Link | None:
        """The station's link as reported: its own status, ``offline`` while its edge is."""
        with self._lock:
            link = self._stations.get(station_id)
            if link is None or station_id not in self._offline_now or link.state == OFFLINE:
                return link
            edge = self._edges[link.edge] if link.edge else link
            return Link(OFFLINE, max(link.since, edge.since), link.edge)

    def counts(self) -> dict[str, int]:
        """Edges online and offline, stations reported offline (for /metrics)."""
        with self._lock:
            edges = [link.state for link in self._edges.values()]
            return {
                "edges_online": edges.count(ONLINE),
                "edges_offline": edges.count(OFFLINE),
                "stations_reported_offline": len(self._offline_now),
            }
