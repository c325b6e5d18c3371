"""Collectors, importers and the network simulator."""

from ingest import simulator
from ingest.simulator import *  # noqa: F403 - the simulator's public API is ingest's

__all__ = list(simulator.__all__)
