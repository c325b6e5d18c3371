"""Probe drivers by the name a profile's ``driver:`` key gives.

A new non-Modbus protocol is one module defining its profile model, its driver and a
``DriverSpec``, plus one line here.
"""

from __future__ import annotations

from ingest.edge.base import DriverSpec
from ingest.edge.drivers import gmc, modbus

DRIVERS: dict[str, DriverSpec] = {
    "modbus": modbus.SPEC,
    "gmc": gmc.SPEC,
}

__all__ = ["DRIVERS"]
