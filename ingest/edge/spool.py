"""The disk spool: every reading is committed here first and leaves only after the broker's PUBACK.

SQLite in WAL mode with ``synchronous=FULL``: a reading counts as taken only once its row is
committed, so neither a SIGKILL nor a power cut loses it. Row ids never repeat
(AUTOINCREMENT), which keeps the forwarder's cursor valid after the spool has emptied.

The spool is bounded (``edge.spool_max_mb``). When it is full:

- ``drop_oldest`` (default) deletes the oldest readings to make room: after a very long outage
  the most recent days are kept, which is what a duty officer needs first;
- ``refuse_new`` keeps what is spooled and refuses new readings: the record of the start of an
  outage is kept and the newest readings are lost.

Either way every lost reading is counted (persistently, table ``counters``) and logged.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

Policy = Literal["drop_oldest", "refuse_new"]
_LOG_EVERY_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    station_id TEXT NOT NULL,
    time TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class SpooledRow:
    id: int
    station_id: str
    time: str
    payload: str


class Spool:
    """A bounded FIFO of reading payloads on disk; used from one thread."""

    def __init__(self, path: str | Path, max_bytes: int, policy: Policy = "drop_oldest") -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.policy = policy
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(f"PRAGMA journal_size_limit={16 * 1024 * 1024}")
        self._db.executescript(_SCHEMA)
        self._page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        self._rows = self._db.execute("SELECT count(*) FROM spool").fetchone()[0]
        self._last_log = 0.0

    # -- writing -------------------------------------------------------------------------------

    def put(self, station_id: str, time_text: str, payload: str) -> bool:
        """Commit one reading; False when the spool is full and the policy refused it."""
        return self.put_many([(station_id, time_text, payload)]) == 1

    def put_many(self, rows: Iterable[tuple[str, str, str]]) -> int:
        """Commit readings in one transaction; returns how many were accepted."""
        accepted = dropped = refused = 0
        before = self._rows
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for station_id, time_text, payload in rows:
                if self._full(len(payload)):
                    if self.policy == "drop_oldest":
                        dropped += self._drop_oldest(len(payload))
                    if self._full(len(payload)):
                        refused += 1
                        continue
                self._db.execute(
                    "INSERT INTO spool (station_id, time, payload) VALUES (?, ?, ?)",
                    (station_id, time_text, payload),
                )
                self._rows += 1
                accepted += 1
            self._count("dropped_oldest", dropped)
            self._count("refused_new", refused)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            self._rows = before
            raise
        if dropped or refused:
            self._report(dropped, refused)
        return accepted

    def _full(self, incoming: int) -> bool:
        # an insert may split a leaf and its parent: two pages of headroom keep the bound hard
        return self.used_bytes() + incoming + 2 * self._page_size > self.max_bytes

    def _drop_oldest(self, incoming: int) -> int:
        """Delete the oldest rows until *incoming* bytes fit (or nothing is left)."""
        dropped = 0
        while self._rows > 0 and self._full(incoming):
            chunk = max(64, self._rows // 100)
            cur = self._db.execute(
                "DELETE FROM spool WHERE id IN (SELECT id FROM spool ORDER BY id LIMIT ?)",
                (chunk,),
            )
            if cur.rowcount <= 0:
                break
            dropped += cur.rowcount
            self._rows -= cur.rowcount
        return dropped

    def _count(self, name: str, amount: int) -> None:
        if amount:
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                (name, amount),
            )

    def _report(self, dropped: int, refused: int) -> None:
        now = time.monotonic()
        if now - self._last_log < _LOG_EVERY_S and self._last_log:
            return
        self._last_log = now
        totals = self.counters()
        log.warning(
            "spool %s is full (%.1f MB, policy %s): %d oldest reading(s) dropped, %d new "
            "refused just now; totals: dropped_oldest=%d refused_new=%d",
            self.path,
            self.max_bytes / 1e6,
            self.policy,
            dropped,
            refused,
            totals.get("dropped_oldest", 0),
            totals.get("refused_new", 0),
        )

    # -- reading and acknowledging -------------------------------------------------------------

    def take(self, after_id: int, limit: int) -> list[SpooledRow]:
        """Up to *limit* rows after *after_id*, oldest first. They stay until ``delete``."""
        cur = self._db.execute(
            "SELECT id, station_id, time, payload FROM spool WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [SpooledRow(*row) for row in cur.fetchall()]

    def take_station(
        self, station_id: str, after_id: int, up_to_id: int, limit: int
    ) -> list[SpooledRow]:
        """Up to *limit* rows of one station with ids in (*after_id*, *up_to_id*], oldest first."""
        cur = self._db.execute(
            "SELECT id, station_id, time, payload FROM spool "
            "WHERE id > ? AND id <= ? AND station_id = ? ORDER BY id LIMIT ?",
            (after_id, up_to_id, station_id, limit),
        )
        return [SpooledRow(*row) for row in cur.fetchall()]

    def delete(self, ids: Sequence[int]) -> None:
        """Forget rows the broker has acknowledged."""
        if not ids:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            removed = 0
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                removed += self._db.execute(
                    f"DELETE FROM spool WHERE id IN ({marks})", tuple(part)
                ).rowcount
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._rows -= removed

    # -- facts ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._rows

    def used_bytes(self) -> int:
        """Bytes of the database file in use (free pages are reused, not counted)."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * self._page_size

    def counters(self) -> dict[str, int]:
        """Readings lost to a full spool, since the spool file was created."""
        return dict(self._db.execute("SELECT name, value FROM counters").fetchall())

    def close(self) -> None:
        self._db.close()
