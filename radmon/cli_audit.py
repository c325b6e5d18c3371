"""``radmon audit list``: who changed what, when and from where (web and CLI)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from radmon import audit
from radmon.cli_common import ConfigOption, exit_2_on_bad_input, ready_store
from radmon.times import parse_time

audit_app = typer.Typer(no_args_is_help=True, help="The audit log of every write.")


@audit_app.command("list")
def audit_list(
    actor: Annotated[str | None, typer.Option("--actor", help="only this user or machine")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 time with a zone")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    config: ConfigOption = None,
) -> None:
    """Entries newest first."""
    with exit_2_on_bad_input(), ready_store(config) as store:
        start = parse_time(since) if since else None
        found = audit.entries(store, actor=actor, since=start, limit=limit)
    for entry in found:
        if as_json:
            typer.echo(json.dumps(entry.model_dump(mode="json"), ensure_ascii=False))
            continue
        at = entry.at.isoformat(timespec="seconds")
        typer.echo(
            f"{at}\t{entry.actor}\t{entry.action}\t{entry.target}\t{entry.outcome}\t{entry.source}"
        )
