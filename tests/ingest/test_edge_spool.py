"""The disk spool: FIFO, durable across reopen, bounded with a counted policy."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from ingest.edge import Spool

PAYLOAD = json.dumps({"time": "x", "dose_rate": 100.0, "unit": "nSv/h", "pad": "p" * 200})


def _fill(spool: Spool, n: int, start: int = 0) -> int:
    """Spool readings numbered start..start+n-1 (in one transaction; the policy applies per row)."""
    return spool.put_many(
        ("QN-01", f"2026-01-01T00:00:{i:09d}Z", PAYLOAD.replace('"x"', f'"{i}"'))
        for i in range(start, start + n)
    )


def _numbers(spool: Spool) -> list[int]:
    return [int(json.loads(r.payload)["time"]) for r in spool.take(0, 1_000_000)]


def test_rows_come_out_oldest_first_and_survive_reopening(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", max_bytes=10_000_000)
    _fill(spool, 50)
    first = spool.take(0, 20)
    assert [int(json.loads(r.payload)["time"]) for r in first] == list(range(20))
    spool.delete([r.id for r in first[:10]])  # acknowledged
    spool.close()

    reopened = Spool(tmp_path / "s.db", max_bytes=10_000_000)
    assert len(reopened) == 40
    assert _numbers(reopened) == list(range(10, 50))  # unacknowledged rows are all still there
    # ids never repeat, even after the spool has been emptied
    last_id = reopened.take(0, 100)[-1].id
    reopened.delete([r.id for r in reopened.take(0, 100)])
    _fill(reopened, 1, start=99)
    assert reopened.take(0, 1)[0].id > last_id
    reopened.close()


def test_full_spool_drop_oldest_keeps_the_newest_and_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "s.db", max_bytes=200_000, policy="drop_oldest")
    with caplog.at_level(logging.WARNING, logger="ingest.edge.spool"):
        accepted = _fill(spool, 3000)
    assert accepted == 3000  # every new reading is taken in
    assert spool.used_bytes() <= 200_000
    kept = _numbers(spool)
    assert kept == list(range(3000 - len(kept), 3000))  # the newest, contiguous, in order
    dropped = spool.counters()["dropped_oldest"]
    assert dropped == 3000 - len(kept) > 0
    assert "full" in caplog.text and "drop_oldest" in caplog.text
    spool.close()
    assert Spool(tmp_path / "s.db", 200_000).counters()["dropped_oldest"] == dropped


def test_full_spool_refuse_new_keeps_the_oldest_and_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "s.db", max_bytes=200_000, policy="refuse_new")
    with caplog.at_level(logging.WARNING, logger="ingest.edge.spool"):
        accepted = _fill(spool, 3000)
    assert 0 < accepted < 3000
    assert spool.used_bytes() <= 200_000
    assert _numbers(spool) == list(range(accepted))  # the oldest are kept
    assert spool.counters() == {"refused_new": 3000 - accepted}
    assert "refused" in caplog.text
    assert not spool.put("QN-01", "2026-01-02T00:00:00.000Z", PAYLOAD)  # one at a time too
    assert spool.counters() == {"refused_new": 3001 - accepted}
    # once rows are acknowledged and deleted there is room again
    spool.delete([r.id for r in spool.take(0, 500)])
    assert spool.put("QN-01", "2026-01-02T00:00:00.000Z", PAYLOAD)
    spool.close()
