"""Who is told what, and when: the alarms as they stand now, against the notification log.

Pure and repeatable: given the open alarms, the log of what each recipient was told, the
silences and the moment, :func:`plan` says which notifications are due and what the log
becomes. The service runs it in one transaction with writing the outbox, so a crash anywhere
either sends a notification once or not yet; never twice, never lost.

Per route and group (Alertmanager's grouping) and per recipient:

- an alarm is news to a recipient when its escalation step for that recipient is due and the
  recipient has not been told of it at that step and severity (a new loop of the escalation
  policy is the repeat reminder);
- the first message of a group waits ``group_wait`` so that a rain front or a plume opening
  alarms on many stations makes one message; later ones wait ``group_interval`` after the
  last; severities listed in ``immediate`` (emergency) wait for nothing;
- an acknowledged alarm is news to nobody (the ack stops the paging), a silenced or
  inhibited one is held back while that lasts, and one whose route is outside its
  ``active_times``; the escalation of an alarm held from the start begins when it is let
  through, at its first step, not with every step it would have climbed meanwhile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerting.rules import Labels, Route, Rules, matches, phone_key
from radmon.config_alerting import Matcher
from radmon.models import Alarm, AlarmState, Station

LogKey = tuple[str, str, str, str]  # route, group key, channel, address


@dataclass
class Told:
    """What a recipient was last told of one alarm."""

    ordinal: int  # escalation loop * steps + step
    severity: int  # Severity.rank

    def as_json(self) -> list[int]:
        return [self.ordinal, self.severity]


@dataclass
class LogEntry:
    last_sent_at: datetime
    marks: dict[int, Told] = field(default_factory=dict)

    @classmethod
    def from_json(cls, last_sent_at: datetime, marks: Mapping[str, Any]) -> LogEntry:
        return cls(last_sent_at, {int(k): Told(int(v[0]), int(v[1])) for k, v in marks.items()})

    def marks_json(self) -> dict[str, list[int]]:
        return {str(k): v.as_json() for k, v in sorted(self.marks.items())}


@dataclass(frozen=True)
class Silence:
    id: int
    matcher: Matcher
    starts_at: datetime
    ends_at: datetime

    def covers(self, labels: Labels, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at and matches(self.matcher, labels)


@dataclass(frozen=True)
class Recipient:
    channel: str
    address: str  # phone, e-mail; empty for a webhook (the channel's own URL)
    contact: str | None
    language: str
    unaccented: bool = False


@dataclass
class Planned:
    """One notification to send: a group's firing alarms and those just cleared."""

    route: str
    group_key: str
    recipient: Recipient
    firing: list[Alarm]
    news: set[int]
    cleared: list[Alarm]


@dataclass
class Plan:
    notifications: list[Planned] = field(default_factory=list)
    new_tracks: dict[tuple[str, int], datetime] = field(default_factory=dict)
    log: dict[LogKey, LogEntry] = field(default_factory=dict)  # to upsert
    forget: list[LogKey] = field(default_factory=list)  # to delete


@dataclass
class _Group:
    route: Route
    key: str
    members: list[tuple[Alarm, datetime]] = field(default_factory=list)


def plan(
    rules: Rules,
    *,
    open_alarms: Sequence[Alarm],
    closed: Mapping[int, Alarm],
    stations: Mapping[str, Station],
    silences: Sequence[Silence],
    tracks: Mapping[tuple[str, int], datetime],
    log: Mapping[LogKey, LogEntry],
    now: datetime,
) -> Plan:
    """What to send now. *closed* holds the alarms the log mentions that are no longer
    open; *tracks* when each route first saw each alarm."""
    result = Plan()
    labelled = [(a, rules.labels(a, stations.get(a.station_id))) for a in open_alarms]
    everyone = [(a.id or 0, lab) for a, lab in labelled]
    routes = {r.name: r for r in rules.all_routes()}
    groups: dict[tuple[str, str], _Group] = {}
    for alarm, labels in labelled:
        assert alarm.id is not None
        if any(s.covers(labels, now) for s in silences):
            continue
        if rules.inhibited(alarm.id, labels, everyone):
            continue
        for route in rules.routes_for(labels):
            if not rules.route_active(route, now):
                continue  # held: its escalation starts when the route is next active
            first = tracks.get((route.name, alarm.id))
            if first is None:
                first = result.new_tracks[(route.name, alarm.id)] = now
            gkey = rules.group_key(route, labels)
            group = groups.setdefault((route.name, gkey), _Group(route, gkey))
            group.members.append((alarm, first))
    for route_name, gkey, _channel, _address in log:
        if (route_name, gkey) not in groups and route_name in routes:
            groups[(route_name, gkey)] = _Group(routes[route_name], gkey)
    for group in groups.values():
        if rules.route_active(group.route, now):
            _plan_group(rules, group, closed, log, now, result)
    for key in log:  # a route or a channel that left the configuration: its log goes too
        if key[0] not in routes or key[2] not in rules.channel_kinds:
            result.forget.append(key)
    return result


def _plan_group(
    rules: Rules,
    group: _Group,
    closed: Mapping[int, Alarm],
    log: Mapping[LogKey, LogEntry],
    now: datetime,
    result: Plan,
) -> None:
    route = group.route
    due = _one_per_address(_due(rules, group, now), rules.channel_kinds)
    by_id = {a.id: a for a, _ in group.members}
    first_at = {a.id: first for a, first in group.members}
    addresses = {(r.channel, r.address) for r in due}
    recipients = set(due) | {
        _known(rules, key)
        for key in log
        if key[:2] == (route.name, group.key)
        and key[2] in rules.channel_kinds
        and key[2:] not in addresses
    }
    for recipient in recipients:
        key = (route.name, group.key, recipient.channel, recipient.address)
        entry = log.get(key)
        owed = due.get(recipient, {})
        told = entry.marks if entry else {}
        news = {
            aid
            for aid, ordinal in owed.items()
            if aid not in told
            or told[aid].ordinal < ordinal
            or told[aid].severity < by_id[aid].severity.rank
        }
        gone = [aid for aid in told if aid not in by_id and aid in closed]
        to_tell_cleared = gone if route.send_cleared else []
        if not news and not to_tell_cleared:
            if gone and entry is not None:
                _drop(result, key, entry, gone)
            continue
        urgent = any(by_id[aid].severity.value in rules.immediate for aid in news)
        if entry is None:
            ready = urgent or now >= min(first_at[aid] for aid in news) + route.group_wait
        else:
            ready = urgent or now >= entry.last_sent_at + route.group_interval
        if not ready:
            continue
        firing = sorted(
            (by_id[aid] for aid in owed),
            key=lambda a: (-a.severity.rank, -(a.peak_nsv_h or 0.0), a.id or 0),
        )
        result.notifications.append(
            Planned(
                route=route.name,
                group_key=group.key,
                recipient=recipient,
                firing=firing,
                news=news,
                cleared=[closed[aid] for aid in to_tell_cleared],
            )
        )
        marks = {aid: t for aid, t in told.items() if aid not in gone}
        marks.update(
            {aid: Told(ordinal, by_id[aid].severity.rank) for aid, ordinal in owed.items()}
        )
        if marks:
            result.log[key] = LogEntry(now, marks)
        else:  # all it knew of has cleared, and it has been told
            result.forget.append(key)


def _drop(result: Plan, key: LogKey, entry: LogEntry, gone: list[int]) -> None:
    """Forget the marks of alarms that closed with nobody to tell."""
    kept = {aid: t for aid, t in entry.marks.items() if aid not in gone}
    if kept:
        result.log[key] = LogEntry(entry.last_sent_at, kept)
    else:
        result.forget.append(key)


def _due(rules: Rules, group: _Group, now: datetime) -> dict[Recipient, dict[int, int]]:
    """For each recipient, the alarms of the group owed to them and at which step."""
    route = group.route
    owed: dict[Recipient, dict[int, int]] = defaultdict(dict)
    contacts_at = [rules.step_contacts(step, now) for step in route.steps]
    for alarm, first in group.members:
        if alarm.state is not AlarmState.ACTIVE_UNACK or alarm.id is None:
            continue  # acknowledged: someone is on it
        elapsed = rules.active_since(route, first, now)  # a held night does not count
        for k in range(len(route.steps)):
            ordinal = route.due_ordinal(k, elapsed)
            if ordinal is None:
                continue
            for recipient in _recipients(rules, route, contacts_at[k], step=k):
                held = owed[recipient]
                # a webhook is told once per alarm: machines need no reminder
                value = 0 if recipient.contact is None else ordinal
                held[alarm.id] = max(held.get(alarm.id, -1), value)
    return owed


def _recipients(rules: Rules, route: Route, contacts: list[str], step: int) -> list[Recipient]:
    out = []
    for channel in route.channels:
        kind = rules.channel_kinds[channel]
        if kind == "webhook":
            if step == 0:
                out.append(Recipient(channel, "", None, rules.language))
            continue
        for name in contacts:
            contact = rules.contacts[name]
            address = contact.phone if kind == "sms" else contact.email
            if address:
                language = contact.language or rules.language
                out.append(Recipient(channel, address, name, language, contact.unaccented))
    return out


def _one_per_address(
    due: Mapping[Recipient, Mapping[int, int]], kinds: Mapping[str, str]
) -> dict[Recipient, dict[int, int]]:
    """One recipient per channel and address: two contacts who share a phone (a duty phone
    handed over) get one message, owing what either is owed, also when one wrote it +84… and
    the other 0…. The log is kept per address, so two recipients of one address once made two
    messages."""
    merged: dict[tuple[str, str], tuple[Recipient, dict[int, int]]] = {}
    for recipient in sorted(due, key=lambda r: r.contact or ""):
        phone = kinds.get(recipient.channel) == "sms"
        key = (recipient.channel, phone_key(recipient.address) if phone else recipient.address)
        _, owed = merged.setdefault(key, (recipient, {}))
        for aid, ordinal in due[recipient].items():
            owed[aid] = max(owed.get(aid, ordinal), ordinal)
    return dict(merged.values())


def _known(rules: Rules, key: LogKey) -> Recipient:
    """The recipient a log entry speaks of (to tell it of cleared alarms)."""
    _route, _group, channel, address = key
    for contact in rules.contacts.values():
        if address and address in (contact.phone, contact.email):
            language = contact.language or rules.language
            return Recipient(channel, address, contact.name, language, contact.unaccented)
    return Recipient(channel, address, None, rules.language)
