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

import threading
from dataclasses import dataclass
from datetime import datetime

ONLINE = "online"
OFFLINE = "offline"
EDGE_PROPERTY = "edge"  # the user property a station status names its edge with


@dataclass(frozen=True)
class Link:
    state: str  # ONLINE or OFFLINE
    since: datetime  # when this node heard it
    edge: str | None = None  # the edge that spoke for a station


class Links:
    """The latest status of every edge and station heard, safe to read from any thread."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._lock = threading.Lock()
        self._edges: dict[str, Link] = {}
        self._stations: dict[str, Link] = {}
        self._offline: frozenset[str] = frozenset()

    def topics(self) -> list[str]:
        """The subscriptions: every station's and every edge's status."""
        return [f"{self.prefix}/+/status", f"{self.prefix}/edge/+/status"]

    def is_status(self, topic: str) -> bool:
        head, _, rest = topic.partition(self.prefix + "/")
        return not head and rest.endswith("/status")

    def heard(self, topic: str, payload: bytes, edge: str | None, now: datetime) -> bool:
        """Take one status message; False if it is not one (a wrong topic or payload)."""
        parts = topic[len(self.prefix) + 1 :].split("/")
        state = payload.decode("utf-8", "replace").strip().lower()
        if not self.is_status(topic) or state not in (ONLINE, OFFLINE):
            return False
        if len(parts) == 3 and parts[0] == "edge" and parts[1]:
            table, key = self._edges, parts[1]
        elif len(parts) == 2 and parts[0]:
            table, key = self._stations, parts[0]
        else:
            return False
        with self._lock:
            known = table.get(key)
            if known is None or known.state != state or (edge and known.edge != edge):
                table[key] = Link(state, now, edge or (known.edge if known else None))
                self._offline = self._reported_offline()
        return True

    def _reported_offline(self) -> frozenset[str]:
        return frozenset(
            station
            for station, link in self._stations.items()
            if link.state == OFFLINE
            or (link.edge is not None and self._edge_state(link.edge) == OFFLINE)
        )

    def _edge_state(self, edge: str) -> str | None:
        link = self._edges.get(edge)
        return link.state if link else None

    def offline(self) -> frozenset[str]:
        """The stations reported offline; the same object until a status changes."""
        return self._offline

    def station(self, station_id: str) -> Link | None:
        """The station's link as reported: its own status, ``offline`` while its edge is."""
        with self._lock:
            link = self._stations.get(station_id)
            if link is None or station_id not in self._offline or link.state == OFFLINE:
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
                "stations_reported_offline": len(self._offline),
            }
