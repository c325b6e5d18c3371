"""``radmon <noun> <verb>``: the command line (CONTRACTS: Commands).

Bad input exits with status 2 and a message naming the file, line or key; nothing else exits 2.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import alembic.util
import typer
from pydantic_settings import SettingsError
from sqlalchemy.exc import DatabaseError, OperationalError

from radmon import __version__, audit
from radmon.cli_alarms import alarms_app, notifications_app, silences_app
from radmon.cli_audit import audit_app
from radmon.cli_common import ConfigOption, check_writable, ready_store, replaced_when_complete
from radmon.cli_tokens import tokens_app
from radmon.cli_users import users_app
from radmon.config import CONFIG_ENV, Settings, load_settings
from radmon.errors import InputError, RadmonError

if TYPE_CHECKING:
    pass

MAX_SIMULATED_READINGS = 500_000_000  # some 40 GB of CSV: beyond it, a typo (--days 1e9)

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="radmon: environmental radiation monitoring and incident response.",
)
db_app = typer.Typer(no_args_is_help=True, help="The database schema.")
stations_app = typer.Typer(no_args_is_help=True, help="Monitoring stations.")
deadletter_app = typer.Typer(no_args_is_help=True, help="Refused input, kept with its reason.")
app.add_typer(db_app, name="db")
app.add_typer(stations_app, name="stations")
app.add_typer(tokens_app, name="tokens")
app.add_typer(deadletter_app, name="deadletter")
app.add_typer(users_app, name="users")
app.add_typer(alarms_app, name="alarms")
app.add_typer(silences_app, name="silences")
app.add_typer(notifications_app, name="notifications")
app.add_typer(audit_app, name="audit")


def _store(settings: Settings):
    from radmon.store import Store

    return Store.open(settings)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"radmon {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """radmon: environmental radiation monitoring and incident response."""
    if config is not None:
        # `radmon --config F db upgrade` as well as `radmon db upgrade --config F`: every
        # command's own --config falls back to this variable
        os.environ[CONFIG_ENV] = str(config)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Create or migrate the schema of database.url."""
    settings = load_settings(config)
    store = _store(settings)
    try:
        meta = store.upgrade()
    finally:
        store.close()
    backend = "TimescaleDB" if meta["rollups"] == "timescale" else store.dialect
    typer.echo(f"schema is current ({backend}; daily buckets in {meta['daily_timezone']})")


@stations_app.command("import")
def stations_import(
    file: Annotated[Path, typer.Argument(help="CSV with station_id,name,lat,lon,…")],
    config: ConfigOption = None,
) -> None:
    """Upsert stations from a CSV file; a bad row stops the import before anything is stored."""
    from radmon.stations_io import read_stations_csv

    settings = load_settings(config)
    parsed = read_stations_csv(file)
    store = _store(settings)
    try:
        store.meta()
        count = store.upsert_stations(parsed)
        audit.record(
            store,
            audit.cli_actor(),
            "stations import",
            target=str(file),
            source="cli",
            details={"stations": count},
        )
    finally:
        store.close()
    typer.echo(f"{count} station(s) imported from {file}")


@deadletter_app.command("list")
def deadletter_list(
    source: Annotated[
        str | None, typer.Option("--source", help="mqtt, http, import:csv, …")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 50,
    since: Annotated[
        str | None,
        typer.Option("--since", help="ISO 8601; without a zone: local time of site.timezone."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show refused input: when, where from, why, and the raw payload."""
    from radmon.times import parse_time

    with ready_store(config) as store:
        try:  # as `radmon silences add --until`: an operator's own clock, not a station's
            start = parse_time(since, store.settings.site.timezone) if since else None
        except InputError as exc:
            raise InputError(f"--since: {exc}") from exc
        letters = store.dead_letters(limit=limit, source=source, since=start)
        counts = store.dead_letter_counts()
    for letter in letters:
        if as_json:
            typer.echo(letter.model_dump_json())
            continue
        when = letter.received_at.isoformat(timespec="seconds")
        station = letter.station_id
        # a topic names its station already; an HTTP push's address does not
        of = f" ({station})" if station and station not in letter.origin else ""
        typer.echo(f"#{letter.id} {when} {letter.source} {letter.origin}{of}: {letter.reason}")
        typer.echo(f"    {letter.payload[:200]}")
    if not as_json:
        total = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
        typer.echo(f"dead letters kept: {total}")


def _options(pairs: list[str] | None) -> dict[str, str]:
    """``--option key=value`` pairs; the format checks the keys and values it takes."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--option {pair!r}: expected KEY=VALUE")
        options[key.strip()] = value.strip()
    return options


OptionPairs = Annotated[
    list[str] | None, typer.Option("--option", help="KEY=VALUE for the format; repeatable.")
]


@app.command("import")
def import_cmd(
    kind: Annotated[str, typer.Argument(help="csv, bgeigie or eurdep.")],
    file: Annotated[Path, typer.Argument(help="The file to import.")],
    option: OptionPairs = None,
    config: ConfigOption = None,
) -> None:
    """Import readings from a file; refused lines go to the dead-letter store with a reason."""
    from ingest.importers import import_file

    with ready_store(config) as store:
        report = import_file(store, kind, file, **_options(option))
    typer.echo(
        f"{file}: {report.read} record(s) read, {report.stored} new reading(s), "
        f"{report.duplicates} already stored, {report.rejected} refused "
        f"(see 'radmon deadletter list --source import:{kind}'), {report.skipped} skipped, "
        f"{report.stations_upserted} station(s) upserted"
    )
    if report.rejected and not (report.readings or report.skipped or report.stations_upserted):
        # every line refused: most likely another format (a EURDEP file given as bgeigie)
        raise InputError(
            f"{file}: no line could be read as {kind}; is it another format? "
            f"(see 'radmon deadletter list --source import:{kind}')"
        )


@app.command("export")
def export_cmd(
    fmt: Annotated[str, typer.Argument(help="csv or irix.")],
    start: Annotated[str, typer.Option("--start", help="ISO 8601 with a zone.")],
    end: Annotated[str, typer.Option("--end", help="ISO 8601 with a zone.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write; - for stdout.")],
    station: Annotated[
        list[str] | None, typer.Option("--station", help="Only these stations; repeatable.")
    ] = None,
    option: OptionPairs = None,
    config: ConfigOption = None,
) -> None:
    """Export readings of a period as the detection CSV or an IAEA IRIX 1.0 report (Sv/s)."""
    from ingest.exporters import export_readings
    from radmon.times import parse_time

    period = {"start": parse_time(start), "end": parse_time(end)}
    with ready_store(config) as store:
        if str(output) == "-":
            report = export_readings(
                store, fmt, sys.stdout, **period, stations=station, **_options(option)
            )
        else:
            with replaced_when_complete(output) as out:
                report = export_readings(
                    store, fmt, out, **period, stations=station, **_options(option)
                )
    typer.echo(f"{report.readings} reading(s) of {report.stations} station(s) exported", err=True)


@app.command("simulate")
def simulate_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="Readings CSV to write.")],
    stations: Annotated[int, typer.Option("--stations", min=1, help="Number of stations.")] = 40,
    days: Annotated[float, typer.Option("--days", min=0.0, help="Simulated days.")] = 7.0,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Random seed (same seed, same output).")
    ] = 1,
    events: Annotated[
        Path | None, typer.Option("--events", help="Also write the injected events CSV.")
    ] = None,
    stations_csv: Annotated[
        Path | None, typer.Option("--stations-csv", help="Also write the stations CSV.")
    ] = None,
    interval_s: Annotated[
        int, typer.Option("--interval-s", min=1, help="Reporting interval.")
    ] = 600,
    start: Annotated[
        str | None, typer.Option("--start", help="Start time, ISO 8601 with zone.")
    ] = None,
    province: Annotated[str, typer.Option("--province", help="Province profile.")] = "quang_ninh",
) -> None:
    """Write a synthetic province: readings, plus the injected events and the stations."""
    from ingest import SimulationConfig, simulate, write_csvs
    from radmon.times import in_range_utc, parse_time

    check_writable(output, events, stations_csv)
    if (readings := stations * days * 86_400 / interval_s) > MAX_SIMULATED_READINGS:
        raise InputError(
            f"--days/--stations/--interval-s: {readings:,.0f} readings asked; "
            f"at most {MAX_SIMULATED_READINGS:,} are simulated at once"
        )
    begin = parse_time(start) if start else datetime(2026, 1, 1, tzinfo=UTC)
    in_range_utc(begin + timedelta(days=days), "--start plus --days")
    config = SimulationConfig(
        n_stations=stations, seed=seed, interval_s=interval_s, start=begin, province=province
    )
    result = simulate(config, days)
    write_csvs(result, output, events, stations_csv)
    typer.echo(f"{len(result.readings)} readings of {stations} stations written to {output}")


@app.command("detect")
def detect_cmd(
    input_csv: Annotated[Path, typer.Option("--input", "-i", help="Readings CSV.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Alarms CSV to write.")],
    stations_csv: Annotated[
        Path | None, typer.Option("--stations", help="Stations CSV (neighbours, sensitivity).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run the detectors of serve over a readings file and write one row per alarm episode."""
    from detectors import detect_frame
    from detectors.files import read_readings_csv, write_alarms_csv
    from radmon.stations_io import read_stations_csv

    settings = load_settings(config)
    check_writable(output)
    stations = read_stations_csv(stations_csv) if stations_csv else []
    readings = read_readings_csv(
        input_csv, {s.station_id: s.timezone for s in stations if s.timezone}
    )
    unknown = sorted(set(readings["station_id"].unique()) - {s.station_id for s in stations})
    if unknown:  # they are judged, but blind: tell the operator rather than flood the output
        shown = ", ".join(unknown[:10]) + (", …" if len(unknown) > 10 else "")
        typer.echo(
            f"warning: {len(unknown)} station(s) not in --stations ({shown}): with no position,"
            " sensitivity or zone they have no neighbours or gauges to tell rain from a"
            " source, so expect many more false alarms there",
            err=True,
        )
    # a file is history: judged by its own times, never by when it is run
    alarms = detect_frame(
        readings,
        stations,
        settings.detection,
        site_timezone=settings.site.timezone,
        now=float("inf"),
    )
    write_alarms_csv(alarms, output)
    typer.echo(f"{len(alarms)} alarm episode(s) from {len(readings)} readings written to {output}")


@app.command("serve")
def serve(config: ConfigOption = None) -> None:
    """Run the central node: MQTT ingest, HTTP ingest and the web (simulator when enabled)."""
    from radmon.runtime import heed_stop_signals, run_node

    heed_stop_signals()
    settings = load_settings(config)
    store = _store(settings)
    store.meta()  # refuses to start on a missing or old schema
    asyncio.run(run_node(store, settings, open_reads=False))


@app.command("edge")
def edge(config: ConfigOption = None) -> None:
    """Run an edge collector: poll the probes of edge.probes, spool to disk, forward to MQTT."""
    from ingest.edge import run_edge

    settings = load_settings(config)
    try:
        asyncio.run(run_edge(settings))
    except InputError as exc:  # a probe or profile problem found while planning the polls
        raise InputError(f"{config or 'configuration'}: {exc}") from exc


@app.command("demo")
def demo(
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="Web port [default: web.port, 8080]."),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the demo keeps its data.")
    ] = Path("radmon-demo"),
    speed: Annotated[
        float | None,
        typer.Option(
            "--speed",
            min=0.001,
            help="Simulated seconds per real second [default: simulator.speed, 1].",
        ),
    ] = None,
    stations: Annotated[
        int | None,
        typer.Option(
            "--stations", min=1, help="Simulated stations [default: simulator.stations, 30]."
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Web address to bind [default: web.host, 127.0.0.1]."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """A simulated province on SQLite with the live map: no server, no network needed."""
    from radmon.runtime import heed_stop_signals, is_loopback, run_node

    heed_stop_signals()
    data_dir.mkdir(parents=True, exist_ok=True)
    # a flag given overrides the configuration (file or RADMON_*), which an absent one keeps
    web = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    simulated = {k: v for k, v in {"speed": speed, "stations": stations}.items() if v is not None}
    settings = load_settings(
        config,
        database={"url": f"sqlite:///{(data_dir / 'radmon.db').resolve()}"},
        web=web,
        simulator={"enabled": True, **simulated},
        mqtt={"enabled": False},
    )
    host, port = settings.web.host, settings.web.port
    store = _store(settings)
    store.upgrade()
    open_reads = is_loopback(host)
    if not open_reads:
        typer.echo("not on loopback: reads need a login", err=True)
    from alerting.demo import demo_alerting

    gateway = demo_alerting(settings, data_dir)
    typer.echo(f"radmon demo: http://{host}:{port}/ (Ctrl-C stops)")
    if gateway is not None:
        typer.echo(f"SMS go to a local gateway double; see {gateway.log_path}")
    try:
        asyncio.run(run_node(store, settings, open_reads=open_reads))
    finally:
        if gateway is not None:
            gateway.stop()


def main() -> None:
    """Console entry point: radmon's own errors become exit status 2 with their message."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        app()
    except RadmonError as exc:
        typer.echo(f"radmon: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except (UnicodeError, csv.Error, SettingsError) as exc:  # input no command checked itself
        typer.echo(f"radmon: bad input: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        if exc.filename is None:
            raise
        typer.echo(f"radmon: {exc.filename}: {exc.strerror}", err=True)
        sys.exit(2)
    except OperationalError as exc:  # not the user's input, but no traceback either
        typer.echo(f"radmon: the database is unavailable: {_first_line(exc)}", err=True)
        sys.exit(1)
    except DatabaseError as exc:  # no rights, a table of another program, a file not SQLite
        typer.echo(f"radmon: the database refused: {_first_line(exc)}", err=True)
        sys.exit(1)
    except alembic.util.CommandError as exc:  # a schema revision this radmon does not know
        typer.echo(
            f"radmon: the database's schema is not one this radmon knows ({exc}); "
            "was it made by a newer radmon?",
            err=True,
        )
        sys.exit(2)


def _first_line(exc: DatabaseError) -> str:
    return str(exc.orig or exc).strip().splitlines()[0][:500]
