"""The store: readings, stations and alarms on SQLite or PostgreSQL/TimescaleDB."""

from radmon.store.alarms import append_event
from radmon.store.engine import dialect_insert, make_engine, normalise_url
from radmon.store.store import SchemaNotReady, Store

__all__ = [
    "SchemaNotReady",
    "Store",
    "append_event",
    "dialect_insert",
    "make_engine",
    "normalise_url",
]
