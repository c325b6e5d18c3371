"""The edge collector (``radmon edge --config FILE``): probes -> disk spool -> MQTT.

One asyncio task polls each probe (Modbus TCP/RTU through pymodbus, or a non-Modbus driver such
as the GQ GMC serial protocol) at its own interval and stamps each reading with UTC time. Every
reading is converted to nSv/h, validated, and committed to a SQLite spool before anything else;
a forwarder drains the spool oldest first to ``{prefix}/{station_id}/dose`` (QoS 1, JSON arrays
of ``edge.publish_batch`` readings) and deletes rows only after the broker's PUBACK. Delivery is
at least once: a reading may arrive twice (after a reconnect or a restart), never zero times
unless the bounded spool overflows, which is counted and logged.

Status and the will: MQTT allows one will per connection, so the will belongs to the edge:
``{prefix}/edge/{edge.id}/status`` is ``online`` while connected and ``offline`` by will (or by
a graceful stop). Each station's ``{prefix}/{station_id}/status`` is published by the edge:
``online``/``offline`` as its probe answers or not, republished after every reconnect, and
``offline`` for all on a graceful stop. All status messages are retained, QoS 1. After a crash
the stations keep their last retained status, so a consumer treats a station as online only
while its edge is online too. See docs/edge.md.
"""

from ingest.edge.app import plan_probes, run_edge
from ingest.edge.catalog import load_profile, shipped_profiles
from ingest.edge.spool import Spool

__all__ = ["Spool", "load_profile", "plan_probes", "run_edge", "shipped_profiles"]
