"""``radmon alarms|silences|notifications``: the alarm lifecycle and alerting from a shell.

For the duty officer on the server when the web is not at hand: list and read alarms,
acknowledge, clear and comment them, silence a station under maintenance, and look at (and
retry) what alerting sent. Times are shown in ``site.timezone``, as the office reads them.
Bad input exits 2 with a message naming the field, as every radmon command does.

``radmon.cli`` imports this module, so it takes its helpers from ``radmon.cli_common`` and
``alerting`` only inside the commands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer

from radmon import times
from radmon.cli_common import ConfigOption, exit_2_on_bad_input, ready_store
from radmon.config_alerting import Matcher
from radmon.errors import InputError
from radmon.models import INT32_MAX, Alarm, Category, Severity

if TYPE_CHECKING:
    from radmon.store import Store

alarms_app = typer.Typer(
    no_args_is_help=True, help="Alarm episodes: list, show, acknowledge, clear, comment."
)
silences_app = typer.Typer(
    no_args_is_help=True, help="Maintenance silences: matching alarms page nobody."
)
notifications_app = typer.Typer(
    no_args_is_help=True, help="What alerting sent or tries to send (the outbox)."
)


class StateFilter(StrEnum):
    OPEN = "open"
    ALL = "all"


# Ids as both databases can compare them: a larger one would be a traceback, not exit 2.
Id = Annotated[int, typer.Argument(min=1, max=INT32_MAX, help="The id (see the list command).")]
By = Annotated[str, typer.Option("--by", help="Who acts (recorded in the alarm's history).")]
Comment = Annotated[str | None, typer.Option("--comment", help="Kept in the alarm's history.")]


@contextmanager
def _session(config: Path | None) -> Iterator[Store]:
    """The ready store; radmon's own errors inside exit 2 with their message."""
    with exit_2_on_bad_input(), ready_store(config) as store:
        yield store


def _zone(store: Store) -> ZoneInfo:
    return times.zone(store.settings.site.timezone)


def _local(moment: datetime | None, zone: ZoneInfo, short: bool = False) -> str:
    """*moment* as the office reads it, '-' when unset; *short* for table cells, whose
    header names the zone."""
    if moment is None:
        return "-"
    local = moment.astimezone(zone)
    return (
        local.strftime("%Y-%m-%d %H:%M") if short else local.isoformat(sep=" ", timespec="seconds")
    )


def _nsv(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.1f}{unit}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, so a terminal reads them down as well as across."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [headers, *rows]
    )


def _who(by: str) -> str:
    """The actor's name, or InputError naming --by: an anonymous action helps nobody later."""
    if not by.strip():
        raise InputError("--by: give the name of who acts")
    return by.strip()


def _found(alarm: Alarm | None, alarm_id: int) -> Alarm:
    if alarm is None:
        raise InputError(f"alarm {alarm_id}: no such alarm")
    return alarm


# -- radmon alarms ----------------------------------------------------------------------------


@alarms_app.command("list")
def alarms_list(
    state: Annotated[
        StateFilter, typer.Option("--state", help="open: active ones; all: cleared ones too.")
    ] = StateFilter.OPEN,
    station: Annotated[str | None, typer.Option("--station", help="Only this station.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 50,
    config: ConfigOption = None,
) -> None:
    """Alarm episodes, the most recently opened first."""
    with _session(config) as store:
        alarms = store.alarms(state=state.value, station_id=station, limit=limit)
        zone = _zone(store)
    if not alarms:
        typer.echo(f"no {'open ' if state is StateFilter.OPEN else ''}alarms")
        return
    rows = [
        [
            str(a.id),
            a.station_id,
            a.kind,
            a.severity.value,
            a.state.value,
            _local(a.opened_at, zone, short=True),
            _nsv(a.peak_nsv_h),
        ]
        for a in alarms
    ]
    headers = ["id", "station", "kind", "severity", "state", f"opened ({zone.key})", "peak nSv/h"]
    typer.echo(_table(headers, rows))


@alarms_app.command("show")
def alarms_show(alarm_id: Id, config: ConfigOption = None) -> None:
    """One alarm and its history: who acknowledged, cleared and commented, and when."""
    with _session(config) as store:
        alarm = _found(store.alarm(alarm_id), alarm_id)
        history = store.alarm_history(alarm_id)
        zone = _zone(store)
    fields = [
        ("station", alarm.station_id),
        ("kind", alarm.kind),
        ("category", alarm.category.value),
        ("severity", alarm.severity.value),
        ("state", alarm.state.value),
        ("opened", _local(alarm.opened_at, zone)),
        ("updated", _local(alarm.updated_at, zone)),
        ("peak", _nsv(alarm.peak_nsv_h, " nSv/h")),
        ("baseline", _nsv(alarm.baseline_nsv_h, " nSv/h")),
        ("acknowledged", _by_at(alarm.acked_by, alarm.acked_at, zone)),
        ("cleared", _by_at(alarm.cleared_by, alarm.cleared_at, zone)),
        ("details", json.dumps(alarm.details, ensure_ascii=False) if alarm.details else "-"),
    ]
    width = max(len(name) for name, _ in fields)
    typer.echo(f"alarm {alarm.id}")
    typer.echo("\n".join(f"  {name.ljust(width)}  {value}" for name, value in fields))
    typer.echo("history (oldest first):")
    for event in history:
        typer.echo(f"  {_local(event['at'], zone)}  {_event(event)}")


def _by_at(by: str | None, at: datetime | None, zone: ZoneInfo) -> str:
    if at is None:
        return "-"
    return f"{_local(at, zone)} by {by}" if by else f"{_local(at, zone)} (automatically)"


def _event(event: dict[str, Any]) -> str:
    """One history line: the event, who, what they said, and the machine's details."""
    text = event["event"]
    if event["actor"]:
        text += f" by {event['actor']}"
    if event["note"]:
        text += f": {event['note']}"
    if event["details"]:
        text += f" {json.dumps(event['details'], ensure_ascii=False)}"
    return text


@alarms_app.command("ack")
def alarms_ack(alarm_id: Id, by: By, comment: Comment = None, config: ConfigOption = None) -> None:
    """Acknowledge an alarm: someone is on it. A second acknowledgement keeps the first."""
    at = datetime.now(UTC)
    with _session(config) as store:
        who = _who(by)
        alarm = _found(store.acknowledge_alarm(alarm_id, who, at, comment), alarm_id)
        zone = _zone(store)
    if alarm.acked_by == who and alarm.acked_at == at:
        typer.echo(f"alarm {alarm_id} acknowledged by {who} ({alarm.state.value})")
    else:
        kept = "; the comment is kept in its history" if comment else ""
        typer.echo(
            f"alarm {alarm_id} was already acknowledged by {alarm.acked_by} "
            f"at {_local(alarm.acked_at, zone)}{kept}"
        )


@alarms_app.command("clear")
def alarms_clear(
    alarm_id: Id, by: By, comment: Comment = None, config: ConfigOption = None
) -> None:
    """Clear an active alarm by hand; the detectors do not reopen it."""
    at = datetime.now(UTC)
    with _session(config) as store:
        who = _who(by)
        alarm = _found(store.clear_alarm(alarm_id, who, at, comment), alarm_id)
        zone = _zone(store)
    if alarm.cleared_by == who and alarm.cleared_at == at:
        typer.echo(f"alarm {alarm_id} cleared by {who} ({alarm.state.value})")
    else:
        by_whom = alarm.cleared_by or "the detectors"
        typer.echo(
            f"alarm {alarm_id} was already cleared at {_local(alarm.cleared_at, zone)} "
            f"by {by_whom}; nothing changed"
        )


@alarms_app.command("comment")
def alarms_comment(
    alarm_id: Id,
    text: Annotated[str, typer.Argument(help="What to keep in the alarm's history.")],
    by: By,
    config: ConfigOption = None,
) -> None:
    """Add a comment to an alarm's history (what was found on site, who was called)."""
    with _session(config) as store:
        who = _who(by)
        if not text.strip():
            raise InputError("TEXT: the comment is empty")
        _found(store.comment_alarm(alarm_id, who, datetime.now(UTC), text.strip()), alarm_id)
    typer.echo(f"comment added to alarm {alarm_id} by {who}")


# -- radmon silences --------------------------------------------------------------------------


@silences_app.command("add")
def silences_add(
    by: By,
    comment: Annotated[str, typer.Option("--comment", help="Why: maintenance, calibration, …")],
    station: Annotated[list[str] | None, typer.Option("--station", help="Station id.")] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", help="Alarm kind (offline, …).")
    ] = None,
    category: Annotated[list[Category] | None, typer.Option("--category")] = None,
    severity: Annotated[list[Severity] | None, typer.Option("--severity")] = None,
    district: Annotated[list[str] | None, typer.Option("--district", help="District name.")] = None,
    group: Annotated[
        list[str] | None, typer.Option("--group", help="Name from alerting.station_groups.")
    ] = None,
    hours: Annotated[float | None, typer.Option("--hours", help="From now, for H hours.")] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="ISO 8601; without a zone: local time of site.timezone."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Page nobody about matching alarms until a time; the alarms are still recorded.

    Every option given must match (repeat one to allow several values); at least one is needed.
    """
    from alerting import admin

    matcher = Matcher(
        stations=station or [],
        kinds=kind or [],
        categories=category or [],
        severities=severity or [],
        districts=district or [],
        groups=group or [],
    )
    with _session(config) as store:
        who = _who(by)
        now = datetime.now(UTC)
        ends_at = _silence_end(hours, until, now, store.settings.site.timezone)
        silence_id = admin.add_silence(store, matcher, ends_at, who, comment, starts_at=now)
        zone = _zone(store)
        unknown = admin.unknown_names(store, matcher)
    typer.echo(
        f"silence {silence_id} until {_local(ends_at, zone, short=True)}: {_matches(matcher)}"
    )
    if unknown:
        typer.echo(
            f"note: no station has {', '.join(map(repr, unknown))} yet: check the spelling",
            err=True,
        )


def _silence_end(hours: float | None, until: str | None, now: datetime, zone: str) -> datetime:
    """When the silence ends: exactly one of --hours and --until, or InputError naming them."""
    if (hours is None) == (until is None):
        raise InputError("silence: give either --hours or --until")
    if hours is not None:
        if not hours > 0:
            raise InputError(f"--hours {hours}: expected more than 0")
        try:
            return now + timedelta(hours=hours)
        except OverflowError:
            raise InputError(f"--hours {hours!r}: too far in the future") from None
    try:
        return times.parse_time(until, zone)
    except InputError as exc:
        raise InputError(f"--until: {exc}") from exc


def _matches(matchers: dict[str, Any] | Matcher) -> str:
    """``stations=HN-001,QN-002 kinds=offline``: what a silence holds back."""
    given = matchers.model_dump(mode="json") if isinstance(matchers, Matcher) else matchers
    return " ".join(f"{k}={','.join(map(str, v))}" for k, v in given.items() if v)


@silences_app.command("list")
def silences_list(
    include_ended: Annotated[bool, typer.Option("--all", help="Ended silences too.")] = False,
    config: ConfigOption = None,
) -> None:
    """Maintenance silences, oldest first: the running ones, or every one with --all."""
    from alerting import admin

    with _session(config) as store:
        rows = admin.silences(store, include_ended)
        zone = _zone(store)
    if not rows:
        typer.echo("no silences" if include_ended else "no silences running")
        return
    table = [
        [
            str(r["id"]),
            _local(r["starts_at"], zone, short=True),
            _local(r["ends_at"], zone, short=True),
            r["created_by"],
            _matches(r["matchers"]),
            r["comment"],
        ]
        for r in rows
    ]
    headers = ["id", f"from ({zone.key})", "until", "by", "matches", "comment"]
    typer.echo(_table(headers, table))


@silences_app.command("expire")
def silences_expire(silence_id: Id, config: ConfigOption = None) -> None:
    """End a silence now: matching alarms page again from the next planning round."""
    from alerting import admin

    with _session(config) as store:
        if not admin.expire_silence(store, silence_id):
            raise InputError(f"silence {silence_id}: no such silence running")
    typer.echo(f"silence {silence_id} ended")


# -- radmon notifications ---------------------------------------------------------------------


@notifications_app.command("list")
def notifications_list(
    state: Annotated[
        str | None, typer.Option("--state", help="pending, sending, sent or failed.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 50,
    config: ConfigOption = None,
) -> None:
    """What alerting sent or tries to send, newest first, with the count of each state."""
    from alerting import admin

    with _session(config) as store:
        items = admin.notifications(store, state, limit)
        counts = admin.notification_counts(store)
        zone = _zone(store)
    if items:
        rows = [
            [
                str(n.id),
                _local(n.created_at, zone, short=True),
                n.state,
                str(n.attempts),
                n.channel,
                n.contact or "-",
                n.address,
                ",".join(map(str, n.alarm_ids)) or "-",
                (n.last_error or "")[:80],
            ]
            for n in items
        ]
        headers = ["id", f"created ({zone.key})", "state", "tries", "channel", "contact"]
        typer.echo(_table([*headers, "address", "alarms", "last error"], rows))
    total = ", ".join(f"{k} {v}" for k, v in counts.items())
    typer.echo(f"notifications: {total}")


@notifications_app.command("retry")
def notifications_retry(notification_id: Id, config: ConfigOption = None) -> None:
    """Send a failed notification again (same key), once its cause is fixed."""
    from alerting import admin

    with _session(config) as store:
        if not admin.retry_notification(store, notification_id):
            raise InputError(f"notification {notification_id}: no failed notification to retry")
    typer.echo(f"notification {notification_id} queued again")
