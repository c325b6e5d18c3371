"""The outbox's sender: claim, send, record, at most ``concurrency`` sends at a time.

A transient failure goes back to the outbox with exponential backoff and full jitter (so a
gateway coming back is not hit by every retry at once); a permanent one, or one that kept
failing for ``give_up_after``, is marked failed, logged as an error and written into the
alarm's history, where the admin sees it. Nothing here waits on the ingest or the detectors,
and a gateway that hangs holds one slot for at most its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import Connection

from alerting import outbox
from alerting.channels import Channel, Delivered, Outgoing, PermanentError
from alerting.outbox import Notification
from radmon.config_alerting import DispatchSettings
from radmon.runtime import until_done
from radmon.store import Store, append_event

log = logging.getLogger(__name__)


def backoff_s(attempt: int, settings: DispatchSettings, rng: random.Random) -> float:
    """Seconds before try *attempt* + 1: exponential, capped, full jitter (AWS's advice)."""
    ceiling = min(
        settings.backoff_max.total_seconds(),
        settings.backoff_initial.total_seconds() * 2 ** max(attempt - 1, 0),
    )
    return rng.uniform(ceiling / 2, ceiling)


class Dispatcher:
    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        settings: DispatchSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.channels = channels
        self.settings = settings
        self.clock = clock
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.rng = random.Random()
        self.sent = self.failed = self.retried = self.withdrawn = 0
        self._in_flight: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        """Send what is due until *stop*; *wake* says new notifications are waiting."""
        poll = self.settings.poll.total_seconds()
        while not stop.is_set():
            wake.clear()  # before claiming: a wake-up that comes during the claim is kept
            room = self.settings.concurrency - len(self._in_flight)
            claimed: list[Notification] = []
            if room > 0:
                claimed = await until_done(self._claim, room, stop=stop, what="outbox claim")
            for item in claimed:
                if item.state == outbox.WITHDRAWN:
                    continue
                task = asyncio.create_task(self._deliver(item, stop))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            if room > 0 and len(claimed) == room:
                await asyncio.sleep(0)  # more may be due: claim again at once
                continue
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
            waiters.extend(self._in_flight)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait(waiters, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters[:2]:
                waiter.cancel()
        if self._in_flight:  # finish what was taken: its result must be recorded
            await asyncio.wait(self._in_flight, timeout=self.settings.lease.total_seconds())

    def _claim(self, limit: int) -> list[Notification]:
        """Due notifications, taken; those withdrawn on the way come back in that state."""
        with self.store.transaction() as conn:
            claimed = outbox.claim(conn, self.clock(), self.worker, limit, self.settings.lease)
            withdrawn = outbox.withdraw_answered(conn, claimed)
        for item in claimed:
            if item.id in withdrawn:
                log.info(
                    "notification %d to %s withdrawn: its alarms were acknowledged or cleared",
                    item.id,
                    item.contact or item.address,
                )
        self.withdrawn += len(withdrawn)
        return [replace(n, state=outbox.WITHDRAWN) if n.id in withdrawn else n for n in claimed]

    async def _deliver(self, item: Notification, stop: asyncio.Event) -> None:
        channel = self.channels.get(item.channel)
        try:
            if channel is None:
                raise PermanentError(f"channel {item.channel!r} is not configured any more")
            result = await channel.send(
                Outgoing(
                    key=item.key,
                    channel=item.channel,
                    address=item.address,
                    text=item.text,
                    subject=item.subject,
                    payload=item.payload,
                    attempt=item.attempts,
                )
            )
        except PermanentError as exc:
            await until_done(self._fail, item, str(exc), stop=stop, what="outbox result")
        except Exception as exc:  # TransientError, or a provider's bug: try again later
            reason = str(exc) or type(exc).__name__
            await until_done(self._retry_or_fail, item, reason, stop=stop, what="outbox result")
        else:
            await until_done(self._sent, item, result, stop=stop, what="outbox result")

    def _sent(self, item: Notification, result: Delivered) -> None:
        now = self.clock()
        with self.store.transaction() as conn:
            if outbox.mark_sent(conn, item.id, now, result.provider_id):
                self._note(conn, item, now, "notified", {"provider_id": result.provider_id})
        self.sent += 1
        log.info(
            "notification %d sent via %s to %s", item.id, item.channel, item.contact or item.address
        )

    def _retry_or_fail(self, item: Notification, reason: str) -> None:
        now = self.clock()
        age = now - item.created_at
        if item.attempts >= self.settings.max_attempts or age >= self.settings.give_up_after:
            self._fail(item, f"gave up after {item.attempts} attempts: {reason}")
            return
        delay = backoff_s(item.attempts, self.settings, self.rng)
        at = datetime.fromtimestamp(now.timestamp() + delay, UTC)
        with self.store.transaction() as conn:
            outbox.mark_retry(conn, item.id, self.worker, at, reason)
        self.retried += 1
        log.warning(
            "notification %d via %s failed (attempt %d): %s; next try in %.0f s",
            item.id,
            item.channel,
            item.attempts,
            reason,
            delay,
        )

    def _fail(self, item: Notification, reason: str) -> None:
        now = self.clock()
        with self.store.transaction() as conn:
            if outbox.mark_failed(conn, item.id, reason):
                self._note(conn, item, now, "notify_failed", {"error": reason})
        self.failed += 1
        log.error(
            "notification %d via %s to %s FAILED: %s (see 'radmon notifications list --state "
            "failed')",
            item.id,
            item.channel,
            item.contact or item.address,
            reason,
        )

    @staticmethod
    def _note(conn: Connection, item: Notification, now: datetime, event: str, extra: dict) -> None:
        details = {
            "notification": item.id,
            "channel": item.channel,
            "contact": item.contact,
            **extra,
        }
        for alarm_id in item.alarm_ids:
            append_event(conn, alarm_id, now, event, details=details)
