"""``radmon edge``: wires probes, spool, forwarder and uplink together, and stops them in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingest.edge.base import Driver, ProfileBase
from ingest.edge.catalog import load_profile
from ingest.edge.convert import iso_z
from ingest.edge.drivers import DRIVERS
from ingest.edge.forwarder import Forwarder
from ingest.edge.poller import Poller
from ingest.edge.spool import Spool
from ingest.edge.uplink import Uplink
from radmon import units
from radmon.config import EdgeSettings, ProbeSettings, Settings
from radmon.errors import InputError

log = logging.getLogger(__name__)

STOP_GRACE_S = 2.0  # how long a stop spends sending what is spooled and awaiting PUBACKs


@dataclass(frozen=True)
class ProbePlan:
    """A probe whose configuration and profile were checked together."""

    probe: ProbeSettings
    profile: ProfileBase
    sensitivity: float | None

    def driver(self) -> Driver:
        return DRIVERS[self.profile.driver].create(self.profile, self.probe)


def plan_probes(edge: EdgeSettings) -> list[ProbePlan]:
    """Check every probe against its profile; the first problem stops start-up (InputError)."""
    plans = []
    for index, probe in enumerate(edge.probes):
        key = f"edge.probes.{index}"
        profile = load_profile(probe.profile, f"{key}.profile")
        spec = DRIVERS[profile.driver]
        if probe.transport not in spec.transports:
            raise InputError(
                f"key {key}.transport: station {probe.station_id}'s profile {profile.name!r} "
                f"speaks {profile.driver}, over {' or '.join(sorted(spec.transports))}, "
                f"not {probe.transport!r}"
            )
        sensitivity = probe.sensitivity_cps_per_usv_h or profile.sensitivity_cps_per_usv_h
        unit = profile.dose_unit()
        if units.is_count_rate(unit) and not sensitivity:
            raise InputError(
                f"key {key}.sensitivity_cps_per_usv_h: station {probe.station_id}'s profile "
                f"{profile.name!r} reports {unit}, which needs a sensitivity (set it here or "
                "in the profile)"
            )
        units.to_nsv_h(1.0, unit, sensitivity)  # the unit converts: checked, not assumed
        plans.append(ProbePlan(probe, profile, sensitivity))
    return plans


class _SpoolSink:
    """Readings from the pollers into the spool; a disk error is logged, never fatal."""

    def __init__(self, spool: Spool, forwarder: Forwarder) -> None:
        self._spool = spool
        self._forwarder = forwarder
        self.errors = 0

    def __call__(self, station_id: str, moment: datetime, payload: dict[str, Any]) -> None:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        try:
            self._spool.put(station_id, iso_z(moment), text)
        except sqlite3.Error as exc:
            self.errors += 1
            log.error("station %s: cannot spool a reading: %s", station_id, exc)
            return
        self._forwarder.notify()


async def run_edge(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the edge collector until *stop* is set (or SIGINT/SIGTERM when *stop* is None)."""
    edge = settings.edge
    plans = plan_probes(edge)
    if not plans:
        log.warning("edge %s has no probes: it only forwards what is already spooled", edge.id)
    loop = asyncio.get_running_loop()
    signals: list[signal.Signals] = []
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
            signals.append(sig)

    try:
        spool = Spool(edge.spool_path, int(edge.spool_max_mb * 1e6), edge.spool_full_policy)
    except (OSError, sqlite3.Error) as exc:  # a directory, another program's file, no access
        raise InputError(
            f"edge.spool_path {edge.spool_path}: cannot use it as a spool: {exc}"
        ) from exc
    uplink = Uplink(settings.mqtt, edge.id, loop, inflight=edge.publish_window + 16)
    forwarder = Forwarder(spool, uplink, edge.publish_batch, edge.publish_window)
    uplink.on_ack = forwarder.on_ack
    uplink.on_connected = forwarder.notify
    sink = _SpoolSink(spool, forwarder)
    pollers = [Poller(p.probe, p.driver(), p.sensitivity, sink, uplink.set_status) for p in plans]
    log.info(
        "edge %s: %d probe(s), spool %s (%d reading(s) waiting), broker %s:%s",
        edge.id,
        len(pollers),
        edge.spool_path,
        len(spool),
        settings.mqtt.host,
        settings.mqtt.port,
    )
    uplink.start()
    forward_task = asyncio.create_task(forwarder.run(stop), name="edge-forwarder")
    poll_tasks = [asyncio.create_task(p.run(stop), name=f"poll-{p.station_id}") for p in pollers]
    stop_task = asyncio.create_task(stop.wait())
    failure: BaseException | None = None
    try:
        done, _ = await asyncio.wait(
            [stop_task, forward_task, *poll_tasks], return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            if task is not stop_task and not task.cancelled() and task.exception():
                failure = task.exception()
                log.error("edge task %s failed: %r", task.get_name(), failure)
    finally:
        stop.set()
        forwarder.notify()
        for task in poll_tasks:
            task.cancel()
        await asyncio.gather(*poll_tasks, forward_task, stop_task, return_exceptions=True)
        await forwarder.finish(STOP_GRACE_S)
        await uplink.close(timeout=1.0)
        waiting = len(spool)
        spool.close()
        for sig in signals:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        log.info("edge %s stopped; %d reading(s) stay spooled", edge.id, waiting)
    if failure is not None:
        raise failure
