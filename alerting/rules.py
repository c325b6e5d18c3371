"""The alerting configuration compiled for use: the route tree, escalation steps, rosters,
inhibition and silences, as functions of an alarm and a moment.

Everything here is pure: the planner asks, nothing is stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from radmon import times
from radmon.config import Settings
from radmon.config_alerting import (
    WEEKDAYS,
    ContactSettings,
    InhibitRule,
    Matcher,
    RosterSettings,
    RouteSettings,
    TimeWindow,
)
from radmon.models import Alarm, Station


@dataclass(frozen=True)
class Labels:
    """What routes, silences and inhibition look at: the alarm and its station's place."""

    station_id: str
    kind: str
    category: str
    severity: str
    district: str
    groups: frozenset[str]

    @classmethod
    def of(cls, alarm: Alarm, station: Station | None, groups: frozenset[str]) -> Labels:
        return cls(
            station_id=alarm.station_id,
            kind=alarm.kind,
            category=alarm.category.value,
            severity=alarm.severity.value,
            district=(station.district or "") if station else "",
            groups=groups,
        )

    def get(self, name: str) -> str:
        return str(getattr(self, name))


def matches(matcher: Matcher, labels: Labels) -> bool:
    """Every list the matcher gives must hold the alarm's value (an empty list: anything)."""
    checks: list[tuple[Sequence[Any], str]] = [
        ([s.value for s in matcher.severities], labels.severity),
        ([c.value for c in matcher.categories], labels.category),
        (matcher.kinds, labels.kind),
        (matcher.stations, labels.station_id),
        (matcher.districts, labels.district),
    ]
    if any(allowed and value not in allowed for allowed, value in checks):
        return False
    return not matcher.groups or bool(labels.groups.intersection(matcher.groups))


def in_windows(windows: Sequence[TimeWindow], local: datetime) -> bool:
    """Whether *local* falls in one of *windows* (none given: always)."""
    if not windows:
        return True
    day, now = WEEKDAYS[local.weekday()], local.time()
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    for window in windows:
        if window.start <= window.end:
            if day in window.days and window.start <= now <= window.end:
                return True
        elif (day in window.days and now >= window.start) or (
            yesterday in window.days and now <= window.end
        ):
            return True  # a night window: it belongs to the day it starts on
    return False


WEEK = timedelta(days=7)


def phone_key(phone: str) -> str:
    """+84 90 123 4567 and 0901234567 are one phone: its national significant digits (the
    last nine; shorter numbers as they are)."""
    digits = re.sub(r"\D", "", phone)
    return digits[-9:] if len(digits) >= 9 else digits


def active_time(
    windows: Sequence[TimeWindow], zone: tzinfo, start: datetime, end: datetime
) -> timedelta:
    """How much of [start, end) lies in *windows* (local time of *zone*); all of it when there
    are none. An escalation's delays count this time only, so an alarm held overnight by
    office hours resumes its steps in the morning instead of paging them all at once."""
    if not windows:
        return max(end - start, timedelta(0))
    weeks = max((end - start) // WEEK, 0)
    whole = weeks * _active_by_day(windows, zone, start, start + WEEK) if weeks else timedelta(0)
    return whole + _active_by_day(windows, zone, start + weeks * WEEK, end)


def _active_by_day(
    windows: Sequence[TimeWindow], zone: tzinfo, start: datetime, end: datetime
) -> timedelta:
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    spans = []
    day = first - timedelta(days=1)  # a night window of the day before reaches into *first*
    while day <= last:
        for window in windows:
            if WEEKDAYS[day.weekday()] not in window.days:
                continue
            ends_on = day if window.start <= window.end else day + timedelta(days=1)
            a = max(datetime.combine(day, window.start, zone), start)
            b = min(datetime.combine(ends_on, window.end, zone), end)
            if a < b:
                spans.append((a, b))
        day += timedelta(days=1)
    total, reach = timedelta(0), None
    for a, b in sorted(spans):  # overlapping windows count once
        if reach is not None and a < reach:
            a = reach
        if a < b:
            total += b - a
            reach = b if reach is None else max(reach, b)
    return total


@dataclass(frozen=True)
class Step:
    offset: timedelta  # since the alarm was first seen by the route
    contacts: tuple[str, ...]
    rosters: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    """A leaf of the route tree with everything inherited filled in."""

    name: str
    steps: tuple[Step, ...]
    cycle: timedelta  # one pass over the steps plus the pause before the next
    max_loops: int  # 0: until acknowledged
    channels: tuple[str, ...]
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    send_cleared: bool
    active_times: tuple[TimeWindow, ...]

    def due_ordinal(self, step_index: int, elapsed: timedelta) -> int | None:
        """The latest (loop, step) of *step_index* that is due after *elapsed*, numbered
        ``loop * len(steps) + step``; None when not even its first pass is due."""
        offset = self.steps[step_index].offset
        if elapsed < offset:
            return None
        loop = int((elapsed - offset) / self.cycle) if self.cycle > timedelta(0) else 0
        if self.max_loops:
            loop = min(loop, self.max_loops)
        return loop * len(self.steps) + step_index


@dataclass
class _Node:
    settings: RouteSettings
    route: Route
    children: list[_Node] = field(default_factory=list)


class Rules:
    """The compiled ``alerting`` section."""

    def __init__(self, settings: Settings) -> None:
        cfg = settings.alerting
        self.cfg = cfg
        self.zone: tzinfo = times.zone(cfg.timezone or settings.site.timezone)
        self.language = cfg.language or settings.site.language
        self.contacts: dict[str, ContactSettings] = {c.name: c for c in cfg.contacts}
        self.rosters: dict[str, RosterSettings] = {r.name: r for r in cfg.rosters}
        self.channel_kinds = {c.name: c.type for c in cfg.channels}
        self.inhibit: list[InhibitRule] = list(cfg.inhibit)
        self._policies = {p.name: p for p in cfg.escalations}
        self._groups_of: dict[str, frozenset[str]] = {}
        for group, members in cfg.station_groups.items():
            for station_id in members:
                self._groups_of[station_id] = self._groups_of.get(station_id, frozenset()) | {group}
        root = RouteSettings(
            group_by=list(cfg.group_by),
            group_wait=cfg.group_wait,
            group_interval=cfg.group_interval,
            repeat_interval=cfg.repeat_interval,
            send_cleared=cfg.send_cleared,
            channels=[c.name for c in cfg.channels],
        )
        self._tree = [self._compile(r, root, str(i)) for i, r in enumerate(cfg.routes)]
        self.immediate = {s.value for s in cfg.immediate}

    def labels(self, alarm: Alarm, station: Station | None) -> Labels:
        return Labels.of(alarm, station, self._groups_of.get(alarm.station_id, frozenset()))

    # -- the route tree -------------------------------------------------------------------

    def _compile(self, node: RouteSettings, parent: RouteSettings, path: str) -> _Node:
        own_recipients = node.contacts or node.rosters or node.escalation
        merged = node.model_copy(
            update={
                key: getattr(parent, key)
                for key in (
                    "channels",
                    "group_by",
                    "group_wait",
                    "group_interval",
                    "repeat_interval",
                    "send_cleared",
                )
                if getattr(node, key) is None
            }
            | (
                {}
                if own_recipients
                else {
                    "contacts": parent.contacts,
                    "rosters": parent.rosters,
                    "escalation": parent.escalation,
                }
            )
            | ({} if node.active_times else {"active_times": parent.active_times})
        )
        compiled = _Node(merged, self._route(merged, node.name or path))
        compiled.children = [
            self._compile(child, merged, f"{path}.{i}") for i, child in enumerate(node.routes)
        ]
        return compiled

    def _route(self, s: RouteSettings, name: str) -> Route:
        assert s.repeat_interval is not None and s.group_wait is not None
        assert s.group_interval is not None
        if s.escalation:
            policy = self._policies[s.escalation]
            steps, offset = [], timedelta(0)
            for step in policy.steps:
                offset += step.after
                steps.append(Step(offset, tuple(step.contacts), tuple(step.rosters)))
            pause = policy.repeat_after or s.repeat_interval
            max_loops = policy.max_loops
        else:
            steps = [Step(timedelta(0), tuple(s.contacts), tuple(s.rosters))]
            pause, max_loops = s.repeat_interval, 0
        return Route(
            name=name,
            steps=tuple(steps),
            cycle=steps[-1].offset + pause,
            max_loops=max_loops,
            channels=tuple(s.channels or ()),
            group_by=tuple(s.group_by or ()),
            group_wait=s.group_wait,
            group_interval=s.group_interval,
            send_cleared=bool(s.send_cleared),
            active_times=tuple(s.active_times),
        )

    def routes_for(self, labels: Labels) -> list[Route]:
        """The leaves an alarm reaches: the first matching branch at each level (all of
        them where a route says ``continue``), the deepest match winning."""
        return _walk(self._tree, labels)

    def all_routes(self) -> list[Route]:
        out: list[Route] = []
        stack = list(self._tree)
        while stack:
            node = stack.pop()
            out.append(node.route)
            stack.extend(node.children)
        return out

    # -- who, and when -------------------------------------------------------------------

    def on_duty(self, roster_name: str, now: datetime) -> str:
        """The contact whose turn it is in roster *roster_name* at *now*."""
        roster = self.rosters[roster_name]
        local = now.astimezone(self.zone)
        for override in reversed(roster.overrides):
            start = _aware(override.start, self.zone)
            end = _aware(override.end, self.zone)
            if start <= now < end:
                return override.contact
        shift_day = local.date()
        if local.time() < roster.handover:
            shift_day -= timedelta(days=1)
        length = 7 if roster.period == "week" else 1
        turn = (shift_day - roster.start).days // length
        return roster.members[turn % len(roster.members)]

    def step_contacts(self, step: Step, now: datetime) -> list[str]:
        names = list(step.contacts) + [self.on_duty(r, now) for r in step.rosters]
        return list(dict.fromkeys(names))

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def route_active(self, route: Route, now: datetime) -> bool:
        return in_windows(route.active_times, self.local(now))

    def active_since(self, route: Route, first: datetime, now: datetime) -> timedelta:
        """The time *route* has been active since *first*: what its escalation delays count."""
        return active_time(route.active_times, self.zone, first, now)

    def group_key(self, route: Route, labels: Labels) -> str:
        return ",".join(f"{name}={labels.get(name)}" for name in route.group_by)

    def inhibited(
        self, target_id: int, target: Labels, active: Iterable[tuple[int, Labels]]
    ) -> bool:
        """Whether another active alarm matching a rule's source holds *target* back."""
        for rule in self.inhibit:
            if not matches(rule.target, target):
                continue
            for source_id, source in active:
                if source_id == target_id or not matches(rule.source, source):
                    continue
                if all(source.get(name) == target.get(name) for name in rule.equal):
                    return True
        return False


def _walk(nodes: list[_Node], labels: Labels) -> list[Route]:
    found: list[Route] = []
    for node in nodes:
        if not matches(node.settings, labels):
            continue
        found.extend(_walk(node.children, labels) or [node.route])
        if not node.settings.continue_:
            break
    return found


def _aware(moment: datetime, zone: tzinfo) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)
