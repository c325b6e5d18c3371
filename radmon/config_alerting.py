"""The ``alerting`` section: channels, contacts, rosters, escalation policies, routes.

Names tie the parts together (a route names contacts and channels), so a misspelt name is
caught here, at start-up, with the key that holds it: a page that silently goes nowhere is
the worst failure an alerting system has.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from radmon.models import Category, Severity

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _duration(value: Any) -> Any:
    """``30s``, ``5m``, ``4h``, ``1d`` or plain seconds (as Alertmanager writes them)."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match[1]) * _UNIT_S[match[2]])
        if not value.strip().upper().startswith("P"):  # ISO 8601 (PT30S) is pydantic's
            raise ValueError(f"{value!r} is not a duration such as 30s, 5m, 4h or 1d")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelSettings(BaseModel):
    """One way out; keys besides these belong to the provider (checked when it is built)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    type: Literal["sms", "email", "webhook"]
    provider: str | None = None  # sms: http, esms, speedsms, twilio, modem

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @model_validator(mode="after")
    def _sms_has_provider(self) -> ChannelSettings:
        if self.type == "sms" and not self.provider:
            raise ValueError(
                "an sms channel needs a provider (http, esms, speedsms, twilio, modem)"
            )
        return self


class ContactSettings(Part):
    name: str = Field(min_length=1)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9]{6,15}$")
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    language: Literal["vi", "en"] | None = None  # None: alerting.language
    unaccented: bool = False  # SMS without diacritics: 160 characters a part instead of 70


class RosterOverride(Part):
    """Someone stands in from *start* to *end* (ISO date-times; local zone unless given)."""

    contact: str
    start: datetime
    end: datetime


class RosterSettings(Part):
    """Whose turn it is: members take turns per period, handing over at a local time."""

    name: str = Field(min_length=1)
    members: list[str] = Field(min_length=1)
    period: Literal["day", "week"] = "day"
    handover: time = time(7, 30)
    start: date = date(2026, 1, 5)  # the first member's first period starts on this day
    overrides: list[RosterOverride] = Field(default_factory=list)


class Recipients(Part):
    contacts: list[str] = Field(default_factory=list)
    rosters: list[str] = Field(default_factory=list)


class EscalationStep(Recipients):
    after: Duration = timedelta(0)  # since the previous step (the first: since the alarm)


class EscalationSettings(Part):
    """PagerDuty-like: ordered steps, then start over after ``repeat_after`` until acked."""

    name: str = Field(min_length=1)
    steps: list[EscalationStep] = Field(min_length=1)
    repeat_after: Duration | None = None  # None: the route's repeat_interval
    max_loops: int = Field(default=0, ge=0)  # 0: repeat until acknowledged or cleared


class TimeWindow(Part):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: list(WEEKDAYS)
    )
    start: time = time(0, 0)
    end: time = time(23, 59, 59, 999999)  # end before start: the window spans midnight


class Matcher(Part):
    """What an alarm must be; every given list must contain the alarm's value."""

    severities: list[Severity] = Field(default_factory=list)
    categories: list[Category] = Field(default_factory=list)
    kinds: list[str] = Field(default_factory=list)
    stations: list[str] = Field(default_factory=list)
    districts: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)  # names from alerting.station_groups


# What alarms may be grouped by (alerting.rules reads these labels off an alarm).
GroupLabel = Literal["station_id", "kind", "category", "severity", "district"]


class RouteSettings(Matcher, Recipients):
    """A node of the route tree; unset timing and recipients are inherited from the parent."""

    name: str | None = None
    escalation: str | None = None
    channels: list[str] | None = None
    group_by: list[GroupLabel] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    send_cleared: bool | None = None
    active_times: list[TimeWindow] = Field(default_factory=list)  # empty: always
    continue_: bool = Field(default=False, alias="continue")
    routes: list[RouteSettings] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class InhibitRule(Part):
    """While an alarm matching ``source`` is active, alarms matching ``target`` with the same
    ``equal`` fields are held back (Alertmanager's inhibition)."""

    source: Matcher
    target: Matcher
    equal: list[Literal["station_id", "kind", "category", "district"]] = Field(
        default_factory=lambda: ["station_id"]
    )


def _default_inhibit() -> list[InhibitRule]:
    return [
        # an offline station's dose alarms are held back: its last readings are not news
        InhibitRule(
            source=Matcher(kinds=["offline"]), target=Matcher(categories=[Category.RADIOLOGICAL])
        ),
        # an emergency says it all: the same station's lesser alarms add nothing
        InhibitRule(
            source=Matcher(severities=[Severity.EMERGENCY]),
            target=Matcher(severities=[Severity.INFO, Severity.WARNING, Severity.ALERT]),
        ),
    ]


class DispatchSettings(Part):
    """The outbox dispatcher: how hard it tries and for how long."""

    concurrency: int = Field(default=16, ge=1, le=256)
    max_attempts: int = Field(default=10, ge=1)
    backoff_initial: Duration = timedelta(seconds=2)
    backoff_max: Duration = timedelta(minutes=5)
    lease: Duration = timedelta(seconds=60)  # a claim older than this is presumed dead
    give_up_after: Duration = timedelta(hours=6)  # transient failures for this long: failed
    poll: Duration = timedelta(seconds=1)


class AlertingSettings(Part):
    enabled: bool = True
    timezone: str | None = None  # None: site.timezone (SMS times are local)
    language: Literal["vi", "en"] | None = None  # None: site.language
    dashboard_url: str = "http://127.0.0.1:8080"  # links in messages
    max_sms_parts: int = Field(default=3, ge=1, le=10)
    group_by: list[GroupLabel] = Field(default_factory=lambda: ["category"])
    group_wait: Duration = timedelta(seconds=10)
    group_interval: Duration = timedelta(minutes=5)
    repeat_interval: Duration = timedelta(hours=1)
    immediate: list[Severity] = Field(default_factory=lambda: [Severity.EMERGENCY])
    send_cleared: bool = False
    tick: Duration = timedelta(seconds=1)
    station_groups: dict[str, list[str]] = Field(default_factory=dict)
    channels: list[ChannelSettings] = Field(default_factory=list)
    contacts: list[ContactSettings] = Field(default_factory=list)
    rosters: list[RosterSettings] = Field(default_factory=list)
    escalations: list[EscalationSettings] = Field(default_factory=list)
    routes: list[RouteSettings] = Field(default_factory=list)
    inhibit: list[InhibitRule] = Field(default_factory=_default_inhibit)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)

    @model_validator(mode="after")
    def _names_resolve(self) -> AlertingSettings:
        problems = _unresolved(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _unique(kind: str, names: list[str]) -> list[str]:
    seen: set[str] = set()
    dupes = [n for n in names if n in seen or seen.add(n)]  # type: ignore[func-returns-value]
    return [f"alerting.{kind}: name {n!r} is given twice" for n in dict.fromkeys(dupes)]


def _unresolved(cfg: AlertingSettings) -> list[str]:
    contacts = {c.name for c in cfg.contacts}
    channels = {c.name for c in cfg.channels}
    rosters = {r.name for r in cfg.rosters}
    policies = {e.name for e in cfg.escalations}
    groups = set(cfg.station_groups)
    problems = [
        *_unique("channels", [c.name for c in cfg.channels]),
        *_unique("contacts", [c.name for c in cfg.contacts]),
        *_unique("rosters", [r.name for r in cfg.rosters]),
        *_unique("escalations", [e.name for e in cfg.escalations]),
    ]

    def check(where: str, names: list[str], known: set[str], what: str) -> None:
        for i, name in enumerate(names):
            if name not in known:
                problems.append(f"{where}[{i}]: unknown {what} {name!r}")

    for r, roster in enumerate(cfg.rosters):
        check(f"alerting.rosters[{r}].members", roster.members, contacts, "contact")
        for o, over in enumerate(roster.overrides):
            check(
                f"alerting.rosters[{r}].overrides[{o}].contact", [over.contact], contacts, "contact"
            )
    for e, policy in enumerate(cfg.escalations):
        for s, step in enumerate(policy.steps):
            where = f"alerting.escalations[{e}].steps[{s}]"
            check(f"{where}.contacts", step.contacts, contacts, "contact")
            check(f"{where}.rosters", step.rosters, rosters, "roster")

    route_names: list[str] = []

    def walk(route: RouteSettings, where: str) -> None:
        if route.name is not None:  # groups and their logs are keyed by it
            route_names.append(route.name)
        check(f"{where}.contacts", route.contacts, contacts, "contact")
        check(f"{where}.rosters", route.rosters, rosters, "roster")
        check(f"{where}.channels", route.channels or [], channels, "channel")
        check(f"{where}.groups", route.groups, groups, "station group")
        if route.escalation is not None:
            check(f"{where}.escalation", [route.escalation], policies, "escalation policy")
        for c, child in enumerate(route.routes):
            walk(child, f"{where}.routes[{c}]")

    for r, route in enumerate(cfg.routes):
        walk(route, f"alerting.routes[{r}]")
    problems += _unique("routes", route_names)
    return problems
