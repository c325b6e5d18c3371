"""``radmon tokens``: bearer tokens of stations (HTTP push) and of machines (API reads/writes).

A token is printed once and only its hash is kept. Each issue and revocation is audited.
"""

from __future__ import annotations

from typing import Annotated

import typer

from radmon import api_tokens, audit
from radmon.cli_common import ConfigOption, exit_2_on_bad_input, ready_store
from radmon.errors import InputError
from radmon.users import Role

tokens_app = typer.Typer(
    no_args_is_help=True, help="Bearer tokens of stations (HTTP push) and machines (API)."
)


@tokens_app.command("add")
def tokens_add(
    station_id: Annotated[str, typer.Argument(help="The station that will push readings.")],
    label: Annotated[str, typer.Option("--label", help="What the token is for.")] = "",
    config: ConfigOption = None,
) -> None:
    """Issue a bearer token for POST /api/v1/readings; it is shown once, keep it safe."""
    with exit_2_on_bad_input(), ready_store(config) as store:
        if store.station(station_id) is None:
            raise InputError(f"no station {station_id!r}: import it first")
        token = store.issue_station_token(station_id, label)
        audit.record(store, audit.cli_actor(), "tokens add", target=station_id, source="cli")
    typer.echo(token)


@tokens_app.command("revoke")
def tokens_revoke(
    station_id: Annotated[str, typer.Argument(help="The station whose tokens stop working.")],
    config: ConfigOption = None,
) -> None:
    """Revoke every token of a station."""
    with exit_2_on_bad_input(), ready_store(config) as store:
        if store.station(station_id) is None:  # a typo revoked nothing and said "0 revoked"
            raise InputError(f"station {station_id!r}: no such station")
        count = store.revoke_station_tokens(station_id)
        audit.record(store, audit.cli_actor(), "tokens revoke", target=station_id, source="cli")
    typer.echo(f"{count} token(s) of {station_id} revoked")


@tokens_app.command("add-api")
def tokens_add_api(
    name: Annotated[str, typer.Argument(help="The machine or integration, e.g. report-job.")],
    role: Annotated[
        Role, typer.Option("--role", case_sensitive=False, help="what it may do (viewer: read)")
    ] = Role.VIEWER,
    config: ConfigOption = None,
) -> None:
    """Issue an API token (Authorization: Bearer) with a role; it is shown once."""
    with exit_2_on_bad_input(), ready_store(config) as store:
        actor = audit.cli_actor()
        token = api_tokens.issue(store, name, role, actor)
        audit.record(
            store, actor, "tokens add-api", target=name, source="cli", details={"role": role}
        )
    typer.echo(token)


@tokens_app.command("revoke-api")
def tokens_revoke_api(
    name: Annotated[str, typer.Argument(help="The machine whose API tokens stop working.")],
    config: ConfigOption = None,
) -> None:
    """Revoke every API token of a machine."""
    with exit_2_on_bad_input(), ready_store(config) as store:
        count = api_tokens.revoke(store, name)
        audit.record(store, audit.cli_actor(), "tokens revoke-api", target=name, source="cli")
    typer.echo(f"{count} API token(s) of {name} revoked")


@tokens_app.command("list")
def tokens_list(config: ConfigOption = None) -> None:
    """Every token, live or revoked, without its secret."""
    with exit_2_on_bad_input(), ready_store(config) as store:
        rows = api_tokens.listing(store)
    for row in rows:
        state = "revoked" if row.get("revoked_at") else "live"
        detail = row.get("role") or row.get("label") or ""
        created = row["created_at"].isoformat(timespec="seconds")
        typer.echo(f"{row['kind']}\t{row['name']}\t{detail}\t{state}\t{created}")
