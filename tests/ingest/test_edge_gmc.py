"""GQ GMC counters (RFC1801 4-byte and RFC1201 2-byte answers) on a pty, through the edge."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.broker import Broker
from tests.ingest.test_edge_helpers import (
    GmcSimulator,
    async_wait_until,
    edge_settings,
    run_edge_until,
    subscriber,
)


@pytest.mark.parametrize(
    ("profile", "cpm_bytes", "cpm"), [("gq-gmc", 4, 70000), ("gq-gmc-legacy", 2, 30)]
)
def test_gmc_counter_cpm_is_converted_to_nsv_h(
    tmp_path: Path, broker: Broker, profile: str, cpm_bytes: int, cpm: int
) -> None:
    counter = GmcSimulator(cpm=cpm, cpm_bytes=cpm_bytes)
    settings = edge_settings(
        tmp_path,
        broker,
        [
            {
                "station_id": "QN-GMC",
                "profile": profile,
                "transport": "gmc",
                "serial_port": counter.port,
                "interval_s": 0.1,
                "timeout_s": 0.5,
                "sensitivity_cps_per_usv_h": 2.0,
            }
        ],
    )
    try:
        with subscriber(broker) as sub:
            asyncio.run(run_edge_until(settings, lambda: sub.readings("QN-GMC"), 15, "a reading"))
            reading = sub.readings("QN-GMC")[0]
    finally:
        counter.close()
    # cpm / 60 = cps; / 2 cps per µSv/h; × 1000 = nSv/h
    assert reading["dose_rate"] == pytest.approx(cpm / 60 / 2.0 * 1000)
    assert reading["unit"] == "nSv/h"
    assert reading["counts"] == cpm and reading["interval_s"] == 60
    assert counter.commands[0] == b"<HEARTBEAT0>>"
    assert b"<GETCPM>>" in counter.commands


def test_silent_gmc_counter_goes_offline_and_back(tmp_path: Path, broker: Broker) -> None:
    counter = GmcSimulator(cpm=25)
    settings = edge_settings(
        tmp_path,
        broker,
        [
            {
                "station_id": "QN-GMC2",
                "profile": "gq-gmc",
                "transport": "gmc",
                "serial_port": counter.port,
                "interval_s": 0.1,
                "timeout_s": 0.2,
                "offline_after": 1,
                "backoff_initial_s": 0.05,
                "backoff_max_s": 0.2,
            }
        ],
    )

    async def scenario(sub) -> None:
        async def outage() -> None:
            await async_wait_until(lambda: sub.statuses("QN-GMC2/status"), 10, "online")
            counter.silent = True
            await async_wait_until(
                lambda: sub.statuses("QN-GMC2/status")[-1:] == ["offline"], 10, "offline"
            )
            counter.cpm = 50
            counter.silent = False

        phase = asyncio.create_task(outage())
        try:
            await run_edge_until(
                settings,
                lambda: any(r["counts"] == 50 for r in sub.readings("QN-GMC2")),
                20,
                "readings after the counter answered again",
            )
            await phase
        finally:
            phase.cancel()

    try:
        with subscriber(broker) as sub:
            asyncio.run(scenario(sub))
            statuses = sub.statuses("QN-GMC2/status")
    finally:
        counter.close()
    assert statuses == ["online", "offline", "online", "offline"]


def test_a_late_answer_is_not_taken_for_the_next_polls() -> None:
    """The protocol has no framing: an answer after the timeout was read by the next poll,
    which then reported the earlier count at its own time."""
    from ingest.edge.base import ProbeError
    from ingest.edge.catalog import load_profile
    from ingest.edge.drivers.gmc import GmcDriver
    from radmon.config import ProbeSettings

    counter = GmcSimulator(cpm=100)
    counter.counting = True
    probe = ProbeSettings(
        station_id="G1", profile="gq-gmc", transport="gmc", serial_port=counter.port, timeout_s=0.3
    )
    driver = GmcDriver(load_profile("gq-gmc"), probe)  # type: ignore[arg-type]

    async def polls() -> list[float | str]:
        await driver.connect()
        got: list[float | str] = []
        try:
            counter.late_s = [0.5, 0.5]  # two answers 0.2 s after their polls gave up
            for _ in range(3):
                try:
                    got.append((await driver.read()).dose_rate)
                except ProbeError:
                    got.append("no answer")
            return got
        finally:
            await driver.close()

    try:
        # the second poll read the first answer (100) as its own; now each gets its own or none
        assert asyncio.run(polls()) == ["no answer", "no answer", 102.0]
    finally:
        counter.close()
