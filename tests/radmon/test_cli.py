"""The CLI as users and outside checks drive it: real processes, real files, exit codes."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from radmon.config import load_settings
from radmon.store import Store

RADMON = [sys.executable, "-m", "radmon"]


def run(
    *args: str, cwd: Path, env: dict | None = None, stdin: str = ""
) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RADMON_")}
    full_env.update(env or {})
    return subprocess.run(
        [*RADMON, *args],
        cwd=cwd,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_version(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("radmon ")


def test_stations_import_is_all_or_nothing(tmp_path: Path) -> None:
    db = {"RADMON_DATABASE__URL": f"sqlite:///{tmp_path}/r.db"}
    assert run("db", "upgrade", cwd=tmp_path, env=db).returncode == 0
    bad = tmp_path / "stations.csv"
    bad.write_text(
        "station_id,name,lat,lon,district\n"
        "QN001,Hạ Long 1,20.95,107.08,Hạ Long\n"
        "QN002,Móng Cái,21.52,abc,Móng Cái\n",
        encoding="utf-8",
    )
    result = run("stations", "import", str(bad), cwd=tmp_path, env=db)
    assert result.returncode == 2
    assert f"{bad}:3: field 'lon'" in result.stderr
    store = Store.open(load_settings(database={"url": db["RADMON_DATABASE__URL"]}))
    assert store.stations() == []  # the good first row was not half-imported
    bad.write_text(
        "station_id,name,lat,lon,elevation_m,probe_model,district,timezone\n"
        "QN001,Hạ Long 1,20.95,107.08,12,GM,Hạ Long,Asia/Ho_Chi_Minh\n"
        "QN002,Móng Cái,21.52,107.97,,,,\n",
        encoding="utf-8",
    )
    result = run("stations", "import", str(bad), cwd=tmp_path, env=db)
    assert result.returncode == 0, result.stderr
    assert [s.station_id for s in store.stations()] == ["QN001", "QN002"]
    assert store.station("QN001").timezone == "Asia/Ho_Chi_Minh"
    store.close()


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ("station_id,name,lat\n", "", "missing required column(s) lon"),
        ("station_id,name,lat,lon\n", "QN/1,x,1,2\n", ":2: field 'station_id'"),
        ("station_id,name,lat,lon,timezone\n", "QN1,x,1,2,Nowhere/Zone\n", ":2: field 'timezone'"),
        ("station_id,name,lat,lon\n", "QN1,x,1,2\nQN1,y,1,2\n", ":3: field 'station_id'"),
        ("station_id,name,lat,lon\n", "QN1,A\x00B,1,2\n", ":2: field 'name'"),  # PG refused it
        ("station_id,name,lat,lon\n", "QN1,x,21,5,107\n", ":2: 5 fields; the header names 4"),
        ("station_id,name,lat,lon\n", "QN1,Caf\udce9,1,2\n", "line 2: not UTF-8 (byte 0xe9)"),
        ("station_id,name,lat,lon,elevation_m\n", "QN1,x,1,2,inf\n", ":2: field 'elevation_m'"),
    ],
)
def test_stations_import_names_file_line_and_field(
    tmp_path: Path, header: str, row: str, message: str
) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes((header + row).encode("utf-8", "surrogateescape"))
    result = run(
        "stations",
        "import",
        str(path),
        cwd=tmp_path,
        env={"RADMON_DATABASE__URL": f"sqlite:///{tmp_path}/r.db"},
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_a_bad_configuration_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "radmon.yaml"
    config.write_text("web:\n  port: eighty\n")
    result = run("db", "upgrade", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "web.port" in result.stderr and str(config) in result.stderr
    result = run("db", "upgrade", cwd=tmp_path, env={"RADMON_CONFIG": str(config)})
    assert result.returncode == 2 and "web.port" in result.stderr


def test_serve_refuses_a_database_without_schema(tmp_path: Path) -> None:
    result = run("serve", cwd=tmp_path, env={"RADMON_DATABASE__URL": f"sqlite:///{tmp_path}/e.db"})
    assert result.returncode == 2
    assert "radmon db upgrade" in result.stderr


SIMULATE_ARGS = ("simulate", "--stations", "6", "--days", "1", "--seed", "3")


def test_simulate_writes_the_contract_files(tmp_path: Path) -> None:
    out, events, stations = tmp_path / "r.csv", tmp_path / "e.csv", tmp_path / "s.csv"
    result = run(
        *SIMULATE_ARGS,
        "--output",
        str(out),
        "--events",
        str(events),
        "--stations-csv",
        str(stations),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:3] == ["time", "station_id", "dose_rate_nsv_h"]
    assert len({r["station_id"] for r in rows}) == 6
    assert rows[0]["time"].endswith("Z")
    assert events.read_text().strip()
    # The stations file round-trips through the import.
    db = {"RADMON_DATABASE__URL": f"sqlite:///{tmp_path}/r.db"}
    assert run("db", "upgrade", cwd=tmp_path, env=db).returncode == 0
    imported = run("stations", "import", str(stations), cwd=tmp_path, env=db)
    assert imported.returncode == 0, imported.stderr
    again = run(*SIMULATE_ARGS, "--output", str(tmp_path / "r2.csv"), cwd=tmp_path)
    assert again.returncode == 0
    assert (tmp_path / "r2.csv").read_bytes() == out.read_bytes()  # deterministic


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--seed", "-1"), "--seed"),
        (("--output", "missing/r.csv"), "no directory missing"),
        (("--output", "r.csv", "--events", "missing/e.csv"), "no directory missing"),
        (("--output", "."), "is a directory"),
        (("--output", "r.csv", "--days", "1e9"), "readings asked"),
    ],
)
def test_simulate_refuses_bad_arguments_before_writing_anything(
    tmp_path: Path, extra: tuple[str, ...], message: str
) -> None:
    # These ended in numpy's or pandas' traceback, the second after r.csv was written.
    args = ("--output", "r.csv") if "--output" not in extra else ()
    result = run("simulate", "--stations", "2", "--days", "0.1", *args, *extra, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@contextmanager
def demo_process(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, **popen: Any
) -> Iterator[subprocess.Popen[str]]:
    """``radmon demo ARGS`` in a process group of its own, as in a terminal; killed at the end
    if the test left it running."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RADMON_")}
    process = subprocess.Popen(
        [*RADMON, "demo", "--data-dir", str(tmp_path / "demo"), *args],
        cwd=tmp_path,
        env={**clean, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **popen,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_healthy(process: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if _get(f"{base}/healthz") == {"status": "ok"}:
                return
        except OSError:
            pass
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, f"demo did not come up on {base}"
        time.sleep(0.3)


def test_demo_serves_a_live_province_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with demo_process(
        tmp_path, "--port", str(port), "--speed", "30", "--stations", "24"
    ) as process:
        wait_healthy(process, base)
        first = _get(f"{base}/api/v1/stations")["features"]
        assert len(first) == 24
        assert all(f["properties"]["dose_rate_nsv_h"] is not None for f in first)
        # At 30x a 60 s interval is 2 s of real time: new readings arrive while we watch.
        newest = max(f["properties"]["time"] for f in first)
        deadline = time.monotonic() + 20
        while (
            max(f["properties"]["time"] for f in _get(f"{base}/api/v1/stations")["features"])
            == newest
        ):
            assert time.monotonic() < deadline, "no live readings"
            time.sleep(0.5)
        with urllib.request.urlopen(f"{base}/", timeout=5) as page:
            html = page.read().decode()
        assert "/static/leaflet/leaflet.js" in html
        # Ctrl-C reaches every process of the group: the detection engine's as well
        os.killpg(process.pid, signal.SIGINT)
        started = time.monotonic()
        output, _ = process.communicate(timeout=10)
        assert time.monotonic() - started < 5
        assert process.returncode == 0
        assert "Traceback" not in output and "died" not in output, output
        deadline = time.monotonic() + 5
        while _group(process.pid):
            assert time.monotonic() < deadline, f"left running: {_group(process.pid)}"
            time.sleep(0.1)
    assert (tmp_path / "demo" / "radmon.db").exists()


def test_demo_takes_its_port_from_the_configuration_unless_a_flag_says(tmp_path: Path) -> None:
    # --port's default overrode web.port: RADMON_WEB__PORT was ignored and 8080 bound
    port = free_port()
    env = {"RADMON_WEB__PORT": str(port)}
    with demo_process(tmp_path, "--stations", "3", env=env) as process:
        wait_healthy(process, f"http://127.0.0.1:{port}")
        assert len(_get(f"http://127.0.0.1:{port}/api/v1/stations")["features"]) == 3
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(15) == 0
    refused = run("demo", "--port", "99999", cwd=tmp_path)
    assert refused.returncode == 2 and "--port" in refused.stderr


def test_ctrl_c_during_the_start_up_of_a_background_demo_stops_it(tmp_path: Path) -> None:
    # A shell starts a background job with SIGINT ignored: the demo ignored a Ctrl-C in its
    # start-up (the detectors' warm-up) and then served until the next one.
    ignoring = {"preexec_fn": lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)}
    with demo_process(tmp_path, "--port", str(free_port()), **ignoring) as process:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:  # the banner comes before the node's start-up
            seen.append(line)
            if line.startswith("radmon demo: http"):
                break
        else:
            raise AssertionError("".join(seen))
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=20)
        assert "Uvicorn running" not in output, output
        assert "Traceback" not in output, output


def _group(pgid: int) -> list[int]:
    """The processes still in process group *pgid*."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def test_config_may_come_before_the_command(tmp_path: Path) -> None:
    config = tmp_path / "radmon.yaml"
    config.write_text(f"database:\n  url: sqlite:///{tmp_path}/given.db\n")
    done = run("--config", str(config), "db", "upgrade", cwd=tmp_path, env={})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "given.db").exists()


def test_undecodable_or_unreachable_input_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    env = {"RADMON_DATABASE__URL": f"sqlite:///{tmp_path}/r.db"}
    assert run("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(b"station_id,name,lat,lon\nL1,H\xe0,21,107\n")
    bad = run("stations", "import", str(latin1), cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    away = {"RADMON_DATABASE__URL": "postgresql://postgres@127.0.0.1:9/none"}
    down = run("users", "list", cwd=tmp_path, env=away)
    assert down.returncode == 1 and "Traceback" not in down.stderr, down.stderr
    assert "the database is unavailable" in down.stderr


def _sqlite_with(path: Path, *statements: str) -> str:
    import sqlite3

    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    ("make", "code", "message"),
    [
        (lambda p: (p.write_text("not sqlite\n" * 100), f"sqlite:///{p}")[1], 1, "not a database"),
        (lambda p: _sqlite_with(p, "create table stations (x int)"), 1, "stations already exists"),
        (
            lambda p: _sqlite_with(
                p,
                "create table alembic_version (version_num varchar(32) primary key)",
                "insert into alembic_version values ('deadbeef')",
            ),
            2,
            "not one this radmon knows",
        ),
        (lambda p: "sqlite:///", 2, "sqlite:///PATH"),
        (lambda p: "sqlite://relative.db", 2, "sqlite:///PATH"),
        (lambda p: "postgresql://u:s3cret@127.0.0.1:notaport/x", 2, "u:***@"),
    ],
)
def test_db_upgrade_on_a_database_it_cannot_use_says_why(
    tmp_path: Path, make: Any, code: int, message: str
) -> None:
    # each ended in a traceback; the last one printed the password
    url = make(tmp_path / "x.db")
    result = run("db", "upgrade", cwd=tmp_path, env={"RADMON_DATABASE__URL": url})
    assert result.returncode == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr
