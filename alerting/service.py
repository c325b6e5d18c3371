"""Alerting inside ``radmon serve`` and ``radmon demo``: plan, send, hear replies.

The planner runs once a second and whenever the detectors say alarms changed; each run is one
transaction that reads the open alarms and the notification log, and writes the notifications
that are due together with the log that records them. The dispatcher sends from the outbox.
A GSM modem's inbox feeds :meth:`AlertingService.on_reply` (``OK 123``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from alerting import outbox
from alerting.channels import Channel, build
from alerting.dispatcher import Dispatcher
from alerting.messages import Renderer
from alerting.planner import Planned, plan
from alerting.rules import Rules, phone_key
from alerting.smstext import unaccent
from radmon.config import Settings
from radmon.models import Station
from radmon.runtime import until_done, wait_any
from radmon.store import Store
from radmon.store.schema import MAX_ROW_ID

log = logging.getLogger(__name__)
STATIONS_REFRESH_S = 60.0
# "OK", "OK 123", "ok #123, 124", "XN 123" (xác nhận), "DA NHAN 123" (đã nhận), unaccented:
# a word, then numbers and separators only. Two patterns, each linear: one with the numbers'
# repetition nested in it backtracked exponentially on "OK 1111…1 thanks" (4 s at 26 digits,
# with the planner and the dispatcher waiting).
REPLY_WORD = re.compile(r"\s*(?:ok|ack|xn|xac nhan|da nhan)\b(.*)", re.I | re.S)
REPLY_NUMBERS = re.compile(r"[\s#:,.\d]*")
MAX_REPLY_CHARS = 1000  # a few concatenated SMS; anything longer is not an acknowledgement


def build_channels(settings: Settings) -> dict[str, Channel]:
    """The configured channels; an unknown provider or a bad key is an exit-2 error."""
    return {
        c.name: build(c.name, c.type, c.provider, c.options(), f"alerting.channels[{i}]")
        for i, c in enumerate(settings.alerting.channels)
    }


def parse_reply(text: str) -> list[int] | None:
    """The alarm numbers an SMS acknowledges ([] for all of the last message); None: not an
    acknowledgement."""
    if len(text) > MAX_REPLY_CHARS:
        return None
    match = REPLY_WORD.fullmatch(unaccent(text))
    if match is None or not REPLY_NUMBERS.fullmatch(match[1]):
        return None
    given = re.findall(r"\d+", match[1])
    ids = [n for n in map(int, given) if 1 <= n <= MAX_ROW_ID]  # no alarm has another id
    return None if given and not ids else ids  # "OK 0" is not "OK": it acknowledges nothing


def same_phone(a: str, b: str) -> bool:
    """+84 90 123 4567 and 0901234567 are one phone (``phone_key``)."""
    ka, kb = phone_key(a), phone_key(b)
    return len(ka) == 9 and ka == kb


class AlertingService:
    """The node's alerting: built from the settings, run until stop."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        channels: dict[str, Channel] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.settings = settings
        self.rules = Rules(settings)
        self.channels = build_channels(settings) if channels is None else channels
        self.clock = clock
        self.dispatcher = Dispatcher(store, self.channels, settings.alerting.dispatch, clock)
        self._stations: dict[str, Station] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._plan_wake: asyncio.Event | None = None
        self._send_wake: asyncio.Event | None = None
        self.planned = 0

    # -- planning -------------------------------------------------------------------------

    def refresh_stations(self) -> None:
        self._stations = {s.station_id: s for s in self.store.stations()}

    def plan_once(self) -> int:
        """Plan and write what is due now; returns how many notifications were queued."""
        now = self.clock()
        if not self._stations:
            self.refresh_stations()
        renderer = Renderer(
            self._stations,
            self.rules.zone,
            self.settings.alerting.dashboard_url,
            self.settings.alerting.max_sms_parts,
        )
        with self.store.transaction() as conn:
            if not outbox.take_planner_lock(conn):
                return 0  # another node is planning this second
            open_alarms = outbox.open_alarms(conn)
            open_ids = {a.id for a in open_alarms if a.id is not None}
            entries = outbox.log(conn)
            mentioned = {aid for entry in entries.values() for aid in entry.marks}
            result = plan(
                self.rules,
                open_alarms=open_alarms,
                closed=outbox.alarms_by_id(conn, mentioned - open_ids),
                stations=self._stations,
                silences=outbox.active_silences(conn, now),
                tracks=outbox.tracks(conn, open_ids),
                log=entries,
                now=now,
            )
            outbox.add_tracks(conn, result.new_tracks)
            outbox.forget_tracks(conn, open_ids)
            outbox.write_log(conn, result.log, result.forget)
            rows = [self._row(p, renderer, now) for p in result.notifications]
            outbox.enqueue(conn, rows, now)
        self.planned += len(rows)
        if rows:
            log.info("queued %d notification(s)", len(rows))
            self._wake(self._send_wake)
        return len(rows)

    def _row(self, planned: Planned, renderer: Renderer, now: datetime) -> dict[str, Any]:
        recipient = planned.recipient
        kind = self.rules.channel_kinds[recipient.channel]
        rendered = renderer.render(planned, kind)
        ids = [a.id for a in planned.firing + planned.cleared]
        return {
            "key": outbox.notification_key(
                planned.route, planned.group_key, recipient.channel, recipient.address, ids, now
            ),
            "channel": recipient.channel,
            "address": recipient.address,
            "contact": recipient.contact,
            "route": planned.route,
            "group_key": planned.group_key,
            "kind": "firing" if planned.firing else "cleared",
            "alarm_ids": ids,
            "subject": rendered.subject,
            "text": rendered.text,
            "payload": rendered.payload,
        }

    def alarms_changed(self) -> None:
        """The detectors recorded alarm changes (any thread): plan now, not at the next tick."""
        self._wake(self._plan_wake)

    def _wake(self, event: asyncio.Event | None) -> None:
        if self._loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: shutting down
                self._loop.call_soon_threadsafe(event.set)

    # -- replies --------------------------------------------------------------------------

    async def on_reply(self, sender: str, text: str) -> None:
        """An SMS came in: ``OK 123`` from a known contact's phone acknowledges alarm 123 if a
        message that reached that phone named it, in the name of the contact it was sent to
        (a contact answers for what they were told of); ``OK`` alone, all of the last one."""
        contacts = [
            c for c in self.rules.contacts.values() if c.phone and same_phone(c.phone, sender)
        ]
        ids = parse_reply(text)
        if not contacts or ids is None:
            log.warning(
                "SMS from %s ignored (%s): %r",
                sender,
                "not an acknowledgement" if contacts else "unknown sender",
                text[:200],
            )
            return
        phones = {c.phone for c in contacts if c.phone}
        reached = await asyncio.to_thread(self._reached, phones)
        if ids:
            named: dict[int, str | None] = {}  # alarm → whom its newest message went to
            for message in reversed(reached):
                named.update(dict.fromkeys(message.alarm_ids, message.contact))
            if untold := [i for i in ids if i not in named]:
                log.warning(
                    "SMS from %s: alarm(s) %s were never sent to this phone; not acknowledged",
                    sender,
                    ", ".join(map(str, untold)),
                )
            acks = [(i, named[i]) for i in ids if i in named]
        elif reached:  # "OK": everything in the last message this phone was sent
            acks = [(i, reached[0].contact) for i in reached[0].alarm_ids]
        else:
            log.warning("SMS %r from %s: nothing was sent to this phone", text[:200], sender)
            return
        now = self.clock()
        for alarm_id, contact in acks:
            who = contact or contacts[0].name
            acked = await asyncio.to_thread(
                self.store.acknowledge_alarm, alarm_id, who, now, f"SMS: {text.strip()[:200]}"
            )
            log.info(
                "alarm %d acknowledged by %s by SMS%s",
                alarm_id,
                who,
                "" if acked else " (no such alarm)",
            )
        self.alarms_changed()

    def _reached(self, phones: set[str]) -> list[outbox.Notification]:
        with self.store.engine.connect() as conn:
            return outbox.reached(conn, phones)

    # -- running --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Plan every tick (and on wake), dispatch, listen for replies; until *stop*."""
        self._loop = asyncio.get_running_loop()
        self._plan_wake, self._send_wake = asyncio.Event(), asyncio.Event()
        for channel in self.channels.values():
            try:
                await channel.start()
            except Exception:  # a modem not plugged in yet: its sends fail and retry
                log.exception(
                    "channel %s did not start; its notifications will retry", channel.name
                )
            channel.listen(self.on_reply)
        sender = asyncio.create_task(self.dispatcher.run(stop, self._send_wake))
        tick = self.settings.alerting.tick.total_seconds()
        last_refresh = 0.0
        try:
            while not stop.is_set():
                moment = self._loop.time()
                if moment - last_refresh >= STATIONS_REFRESH_S:
                    last_refresh = moment
                    await until_done(self.refresh_stations, stop=stop, what="stations")
                self._plan_wake.clear()
                try:
                    await until_done(self.plan_once, stop=stop, what="alerting plan")
                except Exception:
                    log.exception("alerting plan failed; trying again next tick")
                await wait_any(stop, self._plan_wake, timeout=tick)
        finally:
            await sender
            for channel in self.channels.values():
                with contextlib.suppress(Exception):
                    await channel.aclose()
