"""The store: the only place that knows SQL. Everything else asks it questions in domain terms."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.errors import DeadlockDetected, SerializationFailure
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    String,
    and_,
    column,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.exc import OperationalError

from radmon import times
from radmon.config import Settings
from radmon.errors import RadmonError
from radmon.models import (
    Alarm,
    AlarmState,
    AnyReading,
    DeadLetter,
    LatestReading,
    Reading,
    Resolution,
    SeriesPoint,
    Severity,
    Station,
    StationStats,
    trusted,
)
from radmon.store import alarms as alarm_sql
from radmon.store import bulk, deadletters, migrate, rollups, tokens
from radmon.store.engine import WRITER_OPTION, dialect_insert, make_engine
from radmon.store.schema import (
    alarms,
    readings,
    readings_daily,
    readings_hourly,
    stations,
    store_meta,
)

_STATION_FIELDS = tuple(Station.model_fields)
_DEADLOCK_RETRIES = 3
_OPEN_STATES = [s.value for s in AlarmState if s.is_open]
# iter_readings: the first time window it reads, and the narrowest it narrows to
_FIRST_SPAN = timedelta(hours=1)
_MIN_SPAN = timedelta(seconds=1)
_MAX_GROWTH = 16
# The distinct station ids of readings by a loose index scan: one primary-key probe per station.
_STORED_STATION_IDS = text(
    "WITH RECURSIVE ids(id) AS ("
    " SELECT min(station_id) FROM readings"
    " UNION ALL"
    " SELECT (SELECT min(station_id) FROM readings WHERE station_id > ids.id)"
    " FROM ids WHERE ids.id IS NOT NULL"
    ") SELECT id FROM ids WHERE id IS NOT NULL"
).columns(column("id", String))


class SchemaNotReady(RadmonError):
    """The database has not been created or migrated: run ``radmon db upgrade``."""


class Store:
    """Readings, stations and alarms on SQLite or PostgreSQL (with TimescaleDB when present)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._meta: dict[str, str] | None = None

    @classmethod
    def open(cls, settings: Settings) -> Store:
        return cls(make_engine(settings.database.url, settings.database.pool_size), settings)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- schema -------------------------------------------------------------------------------

    def upgrade(self) -> dict[str, str]:
        """Create or migrate the schema (``radmon db upgrade``)."""
        self._meta = migrate.upgrade(self.engine, self.settings)
        return dict(self._meta)

    def meta(self) -> dict[str, str]:
        """The store's facts; raises SchemaNotReady when the schema is missing or old."""
        if self._meta is None:
            if migrate.current_revision(self.engine) != migrate.head_revision():
                raise SchemaNotReady(
                    f"the database at {self.engine.url.render_as_string()} is not at the current "
                    "schema: run 'radmon db upgrade'"
                )
            with self.engine.connect() as conn:
                self._meta = migrate.read_meta(conn)
        return self._meta

    def secret(self, name: str) -> bytes:
        """A random 32-byte secret kept in the database under *name*, made on first use,
        so every node of a cluster and every restart signs with the same key."""
        key = f"secret:{name}"
        with self.transaction() as conn:
            stmt = dialect_insert(conn)(store_meta).values(key=key, value=secrets.token_hex(32))
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))
            value = conn.execute(
                select(store_meta.c.value).where(store_meta.c.key == key)
            ).scalar_one()
        return bytes.fromhex(value)

    @property
    def timescale(self) -> bool:
        return self.meta()["rollups"] == "timescale"

    def ping(self) -> bool:
        """Whether the database answers (``/healthz``)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(select(literal(1)))
            return True
        except Exception:
            return False

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction (on SQLite it takes the write lock at BEGIN, so two writers
        queue instead of failing halfway). Packages that keep their own tables (alerting,
        users) write through this."""
        with self.engine.connect() as conn:
            conn.execution_options(**{WRITER_OPTION: True})
            with conn.begin():
                yield conn

    # -- stations -----------------------------------------------------------------------------

    def upsert_stations(self, items: Iterable[Station]) -> int:
        """Insert or update stations in one transaction; returns how many were written.

        An update changes only the fields a Station was given: a file of just the required
        columns renames and moves a station without wiping its calibration or time zone.
        """
        now = datetime.now(UTC)
        by_fields: dict[frozenset[str], list[dict[str, Any]]] = {}
        for item in items:
            given = frozenset(item.model_fields_set | {"updated_at"}) - {"station_id"}
            by_fields.setdefault(given, []).append({**item.model_dump(), "updated_at": now})
        if not by_fields:
            return 0
        with self.transaction() as conn:
            for given, rows in by_fields.items():
                stmt = dialect_insert(conn)(stations)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[stations.c.station_id],
                    set_={c: stmt.excluded[c] for c in sorted(given)},
                )
                conn.execute(stmt, rows)
        return sum(len(rows) for rows in by_fields.values())

    def stations(self) -> list[Station]:
        with self.engine.connect() as conn:
            result = conn.execute(select(stations).order_by(stations.c.station_id))
            return [_station(row) for row in result.mappings()]

    def station(self, station_id: str) -> Station | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(stations).where(stations.c.station_id == station_id))
                .mappings()
                .first()
            )
        return _station(row) if row else None

    # -- station tokens (HTTP push) ----------------------------------------------------------

    def issue_station_token(self, station_id: str, label: str = "") -> str:
        """A new bearer token for *station_id*; shown once, only its hash is kept."""
        with self.transaction() as conn:
            return tokens.issue(conn, station_id, label)

    def station_for_token(self, token: str) -> str | None:
        with self.engine.connect() as conn:
            return tokens.station_of(conn, token)

    def revoke_station_tokens(self, station_id: str) -> int:
        with self.transaction() as conn:
            return tokens.revoke(conn, station_id)

    # -- dead letters -------------------------------------------------------------------------

    def keep_dead_letters(self, letters: Sequence[DeadLetter]) -> int:
        """Keep refused input idempotently; returns how many letters were new."""
        if not letters:
            return 0
        with self.transaction() as conn:
            return deadletters.keep(conn, letters)

    def dead_letters(
        self, *, limit: int = 100, source: str | None = None, since: datetime | None = None
    ) -> list[DeadLetter]:
        with self.engine.connect() as conn:
            return deadletters.listing(conn, limit=limit, source=source, since=since)

    def dead_letter_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return deadletters.counts(conn)

    # -- alarms and the detection engine's state ------------------------------------------

    def record_alarms(self, items: Sequence[Alarm]) -> list[Alarm]:
        """Upsert alarm episodes by (station_id, kind, opened_at) in one transaction.

        The engine reports an episode while it lasts and replays readings after a restart, so
        recording the same sequence again changes nothing: updated_at and peak only grow,
        severity never drops, baseline and details follow the latest report (a report without
        a baseline keeps the stored one), a cleared report clears the episode (acknowledged or
        not, as it was) and nothing reopens it, and a person's acknowledgement is kept.
        Returns, for each item in order, the episode as stored, with its id.
        """
        if not items:
            return []
        with self.transaction() as conn:
            return alarm_sql.record(conn, items, datetime.now(UTC))

    def alarms(
        self,
        state: str = "open",
        station_id: str | None = None,
        since: datetime | None = None,
        limit: int = 1000,
        *,
        severities: Sequence[str] | None = None,
        category: str | None = None,
        acknowledged: bool | None = None,
        before: int | None = None,
    ) -> list[Alarm]:
        """Alarm episodes, the most recently opened first (opened_at, then id, descending).

        *state* ``open`` keeps the active ones (acknowledged or not), ``all`` every one;
        *since* keeps those opened at or after it; *severities*, *category* and
        *acknowledged* filter further. *before* (an alarm's id) pages on after that alarm.
        ValueError on another state or a limit < 1; LookupError when *before* is unknown.
        """
        with self.engine.connect() as conn:
            return alarm_sql.listing(
                conn,
                state=state,
                station_id=station_id,
                since=times.ensure_utc(since) if since else None,
                limit=limit,
                severities=severities,
                category=category,
                acknowledged=acknowledged,
                before=before,
            )

    def acknowledge_alarm(
        self, alarm_id: int, by: str, at: datetime, note: str | None = None
    ) -> Alarm | None:
        """Record that *by* acknowledged the alarm at *at*; None when there is no such alarm.

        Active stays active and cleared stays cleared; an alarm acknowledged before keeps its
        first acknowledgement (who answered first is what the log must show).
        """
        with self.transaction() as conn:
            return alarm_sql.acknowledge(conn, alarm_id, by, times.ensure_utc(at), note)

    def clear_alarm(
        self, alarm_id: int, by: str, at: datetime, note: str | None = None
    ) -> Alarm | None:
        """Clear an active alarm by hand (the engine will not reopen it); None if unknown."""
        with self.transaction() as conn:
            return alarm_sql.clear(conn, alarm_id, by, times.ensure_utc(at), note)

    def comment_alarm(self, alarm_id: int, by: str, at: datetime, note: str) -> Alarm | None:
        """Add a comment to the alarm's history; None when there is no such alarm."""
        with self.transaction() as conn:
            alarm = alarm_sql.get(conn, alarm_id)
            if alarm is not None:
                alarm_sql.append_event(
                    conn, alarm_id, times.ensure_utc(at), "comment", actor=by, note=note
                )
            return alarm

    def alarm(self, alarm_id: int) -> Alarm | None:
        with self.engine.connect() as conn:
            return alarm_sql.get(conn, alarm_id)

    def alarm_history(self, alarm_id: int) -> list[dict[str, Any]]:
        """The alarm's history, oldest first: what happened, when, who, and a note."""
        with self.engine.connect() as conn:
            return alarm_sql.history(conn, alarm_id)

    def save_detector_state(self, name: str, payload: bytes, saved_at: datetime) -> None:
        """Keep the snapshot of detection engine *name*, replacing its previous one."""
        with self.transaction() as conn:
            alarm_sql.save_state(conn, name, payload, times.ensure_utc(saved_at))

    def load_detector_state(self, name: str) -> tuple[datetime, bytes] | None:
        """The last snapshot of engine *name* and when it was saved; None if it never was."""
        with self.engine.connect() as conn:
            return alarm_sql.load_state(conn, name)

    # -- readings -----------------------------------------------------------------------------

    def write_readings(self, batch: Sequence[AnyReading]) -> int:
        """Store *batch* idempotently; returns how many readings were new."""
        return len(self.add_readings(batch))

    def add_readings(self, batch: Sequence[AnyReading]) -> list[AnyReading]:
        """Store *batch* idempotently; returns the readings that were new, for the detectors:
        a reading stored already, or repeated later in the batch, is not judged again.

        On plain PostgreSQL the rollups are not touched here: the hours the batch filled are
        marked for :meth:`refresh_rollups`, and reads answer marked hours from raw readings.
        """
        if not batch:
            return []
        zone = self.meta()["daily_timezone"]
        fresh, deadlocks = True, 0
        while True:
            try:
                with self.transaction() as conn:
                    if self.dialect == "postgresql":
                        return bulk.write_postgres(conn, batch, not self.timescale, fresh)
                    return bulk.write_sqlite(conn, batch, zone)
            except psycopg.errors.UniqueViolation:
                if not fresh:
                    raise
                fresh = False  # some are stored already (a redelivery): keep only the new ones
            except (OperationalError, psycopg.errors.OperationalError) as exc:
                # Two writers COPYing overlapping readings (a redelivery racing the original)
                # can deadlock; the batch is idempotent, so trying again is always safe.
                deadlocks += 1
                if not _is_deadlock(exc) or deadlocks >= _DEADLOCK_RETRIES:
                    raise

    def refresh_rollups(self, limit: int | None = None) -> int:
        """Bring the hourly and daily rollups up to date; returns how many hours were redone.

        Run it every minute or so (``limit`` bounds one run, oldest hours first). Reads are
        exact without it, but every hour still marked is read from raw readings, so a long gap
        makes statistics slower. Each marked hour costs one aggregation of that hour's readings
        over all stations (60,000 rows for 1,000 one-minute stations), and each local day it
        falls in one aggregation of that day's hourly rows. Safe next to writers and other
        refreshers (they wait for one another). SQLite and TimescaleDB keep their rollups
        current by themselves: there it returns 0.
        """
        if self.dialect != "postgresql" or self.timescale:
            return 0
        zone = self.meta()["daily_timezone"]
        with self.transaction() as conn:
            return rollups.refresh(conn, zone, limit)

    def latest(self) -> list[LatestReading]:
        """Every station with its most recent reading and the severity of its open alarms.

        The live map asks this every few seconds from every open browser. On PostgreSQL the
        answer is kept until the database has written anything at all (its WAL insert position
        moved), so unchanged polls cost one tiny query; the list then carries the same
        ``version`` (an opaque token), which lets callers reuse what they derived from it.
        """
        with self.engine.connect() as conn:
            marker = self._latest_marker(conn)
            hit = self._latest_hit(marker)
            if hit is not None:
                return hit
            if marker is None:
                return self._latest_compute(conn, None)
        with _LATEST_LOCK, self.engine.connect() as conn:
            # polls that missed together wait here for one query instead of all running it
            marker = self._latest_marker(conn)
            hit = self._latest_hit(marker)
            if hit is not None:
                return hit
            snapshot = self._latest_compute(conn, marker)
            self._latest_cache = snapshot
            return snapshot

    def _latest_hit(self, marker: str | None) -> _LatestSnapshot | None:
        cached: _LatestSnapshot | None = getattr(self, "_latest_cache", None)
        if marker is None or cached is None or cached.marker != marker:
            return None
        return _LatestSnapshot(cached, marker, cached.version)

    def _latest_compute(self, conn: Connection, marker: str | None) -> _LatestSnapshot:
        """The answer from the database; objects of stations and readings that did not change
        since the previous answer are reused (building 1,000 of them took most of the time)."""
        rows = conn.execute(self._latest_query()).all()
        severities = self._open_severities(conn)
        before: _LatestSnapshot | None = getattr(self, "_latest_cache", None)
        known = before.by_station if before is not None else {}
        items = []
        by_station: dict[str, tuple[tuple[Any, ...], tuple[Any, ...], LatestReading]] = {}
        for row in rows:
            station_id = row.station_id
            key = row[:-2]  # the station's columns; the query ends with the newest reading's two
            newest = (row.r_time, row.dose_rate_nsv_h, severities.get(station_id))
            old = known.get(station_id)
            if old is not None and old[0] == key and old[1] == newest:
                item = old[2]
            else:
                same_station = old is not None and old[0] == key
                item = trusted(
                    LatestReading,
                    station=old[2].station if same_station else _station(row._mapping),
                    time=newest[0],
                    dose_rate_nsv_h=newest[1],
                    severity=newest[2],
                )
            by_station[station_id] = (key, newest, item)
            items.append(item)
        return _LatestSnapshot(items, marker, object(), by_station)

    def _latest_query(self) -> Select:
        r = readings.c
        if self.dialect == "postgresql":
            # One backward primary-key scan per station that stops at the first row (7 ms for
            # 1,000 stations), where max(time) then a second probe took 18 ms.
            newest = (
                select(r.time.label("r_time"), r.dose_rate_nsv_h)
                .where(r.station_id == stations.c.station_id)
                .order_by(r.time.desc())
                .limit(1)
                .lateral("newest")
            )
            return (
                select(stations, newest.c.r_time, newest.c.dose_rate_nsv_h)
                .select_from(stations)
                .outerjoin(newest, literal(True))
                .order_by(stations.c.station_id)
            )
        inner = readings.alias("newest")
        newest_time = (
            select(func.max(inner.c.time))
            .where(inner.c.station_id == stations.c.station_id)
            .correlate(stations)
            .scalar_subquery()
        )
        return (
            select(stations, r.time.label("r_time"), r.dose_rate_nsv_h)
            .select_from(stations)
            .outerjoin(readings, and_(r.station_id == stations.c.station_id, r.time == newest_time))
            .order_by(stations.c.station_id)
        )

    def _latest_marker(self, conn: Connection) -> str | None:
        """Where PostgreSQL's WAL insertion stands: any commit anywhere moves it.

        Read before the query, so a commit racing the query only costs a recomputation. None
        (no caching) on SQLite and on a standby, which has no insert position of its own.
        """
        if self.dialect != "postgresql":
            return None
        return conn.execute(
            text(
                "SELECT CASE WHEN pg_is_in_recovery() THEN NULL "
                "ELSE pg_current_wal_insert_lsn()::text END"
            )
        ).scalar()

    def _open_severities(self, conn: Connection) -> dict[str, Severity]:
        found: dict[str, Severity] = {}
        query = select(alarms.c.station_id, alarms.c.severity).where(
            alarms.c.state.in_(_OPEN_STATES)
        )
        for station_id, value in conn.execute(query):
            severity = Severity(value)
            if station_id not in found or severity.rank > found[station_id].rank:
                found[station_id] = severity
        return found

    def readings(self, station_id: str, start: datetime, end: datetime) -> list[Reading]:
        """A station's raw readings in [start, end), oldest first, with every stored field."""
        query = (
            select(readings)
            .where(
                readings.c.station_id == station_id,
                readings.c.time >= times.ensure_utc(start),
                readings.c.time < times.ensure_utc(end),
            )
            .order_by(readings.c.time)
        )
        with self.engine.connect() as conn:
            return [trusted(Reading, **row) for row in conn.execute(query).mappings()]

    def first_reading_time(
        self, station_ids: Sequence[str], start: datetime, end: datetime
    ) -> datetime | None:
        """The earliest reading time of any of *station_ids* in [start, end), or None: one
        index lookup per station, so a reader can leap over years without readings."""
        start, end = times.ensure_utc(start), times.ensure_utc(end)
        found: datetime | None = None
        with self.engine.connect() as conn:
            for station_id in station_ids:
                query = select(func.min(readings.c.time)).where(
                    readings.c.station_id == station_id,
                    readings.c.time >= start,
                    readings.c.time < (found or end),
                )
                first = conn.execute(query).scalar_one()
                if first is not None:
                    found = times.ensure_utc(first)
        return found

    def iter_readings(
        self, start: datetime, end: datetime, chunk: int = 50_000
    ) -> Iterator[list[Reading]]:
        """Every reading with start < time <= end, ordered by (time, station_id), in chunks.

        For warming the detection engine up from history: every chunk but the last holds
        exactly *chunk* readings. Pages are found by key, never by OFFSET, and each is read in
        a short transaction of its own, so a long warm-up holds no snapshot open. Each query is
        bounded by a time window sized from the density seen so far; unbounded, every page
        would sort all the readings up to *end* (quadratic over a month of a province).
        """
        if chunk < 1:
            raise ValueError(f"chunk={chunk!r}: expected at least 1")
        start, end = times.ensure_utc(start), times.ensure_utc(end)
        after: tuple[datetime, str | None] = (start, None)  # exclusive; None: all of that time
        span = _FIRST_SPAN
        pending: list[Reading] = []
        while after[0] < end or after[1] is not None:  # the last instant may continue
            hi = end if span >= end - after[0] else after[0] + span
            want = chunk - len(pending)
            with self.engine.connect() as conn:
                rows = conn.execute(self._readings_page(after, hi, want)).mappings().all()
            pending.extend(trusted(Reading, **row) for row in rows)
            if len(rows) == want:
                # the window held at least what was wanted: aim the next one at about a chunk
                last = pending[-1]
                span = max(_MIN_SPAN, (last.time - after[0]) * (chunk / want))
                after = (last.time, last.station_id)
            else:
                span *= min(_MAX_GROWTH, chunk / max(len(rows), chunk / _MAX_GROWTH))
                after = (hi, None)
            if len(pending) == chunk:
                yield pending
                pending = []
        if pending:
            yield pending

    def _readings_page(
        self, after: tuple[datetime, str | None], upto: datetime, limit: int
    ) -> Select[Any]:
        """Readings after the key *after*, up to *upto* (inclusive), in (time, station_id) order."""
        r = readings.c
        moment, station_id = after
        if station_id is None:
            past = r.time > moment
        else:
            past = and_(r.time >= moment, or_(r.time > moment, r.station_id > station_id))
        query = (
            select(readings).where(past, r.time <= upto).order_by(r.time, r.station_id).limit(limit)
        )
        if self.dialect == "sqlite":
            # SQLite has no index on time alone: naming every station lets it seek the window
            # in the (station_id, time) primary key instead of scanning the table.
            query = query.where(r.station_id.in_(_STORED_STATION_IDS))
        return query

    def series(
        self, station_id: str, start: datetime, end: datetime, resolution: Resolution
    ) -> list[SeriesPoint]:
        """A station's series in [start, end) at raw, hourly or daily (local day) resolution."""
        start, end = times.ensure_utc(start), times.ensure_utc(end)
        if resolution is Resolution.RAW:
            dose = readings.c.dose_rate_nsv_h
            query = (
                select(readings.c.time, dose, dose, dose, literal(1), readings.c.precip_mm_h)
                .where(
                    readings.c.station_id == station_id,
                    readings.c.time >= start,
                    readings.c.time < end,
                )
                .order_by(readings.c.time)
            )
            with self.engine.connect() as conn:
                rows = [tuple(row) for row in conn.execute(query)]
        else:
            with self._reading() as conn:
                rows = self._rollup_series(conn, station_id, start, end, resolution)
        return [
            SeriesPoint(time=t, mean_nsv_h=m, min_nsv_h=lo, max_nsv_h=hi, count=n, precip_mm_h=rain)
            for t, m, lo, hi, n, rain in rows
        ]

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A read whose statements share one snapshot, so rollup rows and marks agree."""
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            yield conn

    def _rollup_series(
        self,
        conn: Connection,
        station_id: str,
        start: datetime,
        end: datetime,
        resolution: Resolution,
    ) -> list[tuple[Any, ...]]:
        """Rollup rows of the buckets overlapping [start, end); marked ones from raw readings.

        Each row ends with the bucket's mean rain rate (None without rain readings).
        """
        zone = self.meta()["daily_timezone"]
        hourly = resolution is Resolution.HOUR
        table = readings_hourly if hourly else readings_daily
        # a bucket belongs to the series when it overlaps the period; a local day may last
        # 25 h or more (a clock set back), so days are looked for from 2 days back and kept
        # below only if they end after the start
        span = rollups.HOUR if hourly else timedelta(days=2)
        lo, hi = start - span, end
        marked = rollups.dirty_hours(conn, lo - rollups.HOUR, hi + span + rollups.HOUR)
        buckets = (
            set(marked) if hourly else {d for h in marked for d in rollups.days_of_hour(h, zone)}
        )
        stale = sorted(b for b in buckets if lo < b < hi)
        query = (
            select(
                table.c.bucket,
                table.c.sum_nsv_h / table.c.n,
                table.c.min_nsv_h,
                table.c.max_nsv_h,
                table.c.n,
                table.c.rain_n,
                table.c.rain_sum_mm_h,
            )
            .where(table.c.station_id == station_id, table.c.bucket > lo, table.c.bucket < hi)
            .order_by(table.c.bucket)
        )
        if not stale:
            rows = [tuple(row) for row in conn.execute(query)]
        else:
            rows = [tuple(row) for row in conn.execute(query.where(table.c.bucket.not_in(stale)))]
            ends = [b + rollups.HOUR if hourly else rollups.day_end(b, zone) for b in stale]
            r = readings.c
            raw = select(r.station_id, r.time, r.dose_rate_nsv_h, r.precip_mm_h).where(
                r.station_id == station_id,
                rollups.in_spans(r.time, rollups.merge_spans(zip(stale, ends, strict=True))),
            )
            by_hour, by_day = rollups.aggregate(conn.execute(raw), zone)
            fresh = by_hour if hourly else by_day
            rows += [
                (b, total / n, low, high, n, rain_n, rain_sum)
                for (_, b), (n, total, low, high, rain_n, rain_sum) in fresh.items()
            ]
            rows.sort(key=lambda row: row[0])
        if not hourly:
            rows = [row for row in rows if rollups.day_end(row[0], zone) > start]
        # the bucket's mean rain rate over the readings that carried one
        return [(*row[:5], row[6] / row[5] if row[5] else None) for row in rows]

    def stats(
        self, start: datetime, end: datetime, station_ids: Sequence[str] | None = None
    ) -> list[StationStats]:
        """Mean, min, max, count and data availability per station over [start, end).

        Whole hours come from the hourly rollup, the ragged edges (and hours not refreshed yet)
        from raw readings, so a month over a thousand stations reads thousands of rows, not
        tens of millions. Only stations in ``stations`` are reported.
        """
        start, end = times.ensure_utc(start), times.ensure_utc(end)
        with self._reading() as conn:
            dirty = rollups.dirty_hours(conn, rollups.hour_bucket(start), end)
            parts = rollups.period_parts(start, end, dirty, station_ids, registered_only=True)
            combined_parts = union_all(*parts).subquery()
            c = combined_parts.c
            combined = select(
                c.station_id, func.sum(c.n), func.sum(c.total), func.min(c.low), func.max(c.high)
            ).group_by(c.station_id)
            found = {row[0]: row[1:] for row in conn.execute(combined)}
        period_s = (end - start).total_seconds()
        result = []
        for station in self.stations():
            if station_ids is not None and station.station_id not in station_ids:
                continue
            n, total, low, high = found.get(station.station_id, (0, None, None, None))
            result.append(StationStats.of(station, int(n or 0), total, low, high, period_s))
        return result


def _is_deadlock(exc: Exception) -> bool:
    # SQLAlchemy wraps the driver's error; the COPY, run on the driver itself, raises it bare.
    cause = exc.orig if isinstance(exc, OperationalError) else exc
    return isinstance(cause, DeadlockDetected | SerializationFailure)


def _station(row: object) -> Station:
    # Stations were validated when they were stored; re-validating a thousand of them on every
    # map poll was half the time of latest().
    mapping = dict(row)  # type: ignore[call-overload]
    return trusted(
        Station, **{k: mapping[k] for k in _STATION_FIELDS if mapping.get(k) is not None}
    )


_LATEST_LOCK = threading.Lock()


class _LatestSnapshot(list):  # type: ignore[type-arg]
    """``Store.latest``'s answer with the change marker and version it was computed under."""

    def __init__(
        self,
        items: Iterable[LatestReading],
        marker: str | None,
        version: object,
        by_station: dict[str, tuple[tuple[Any, ...], tuple[Any, ...], LatestReading]] | None = None,
    ) -> None:
        super().__init__(items)
        self.marker = marker
        self.version = version
        # station id -> (station columns, newest reading and severity, the item made of them)
        self.by_station = by_station or {}
