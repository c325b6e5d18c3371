"""The ingest commands as an operator runs them: import, export, tokens, dead letters."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.radmon.test_cli import run


def _prepared(tmp_path: Path) -> dict[str, str]:
    env = {"RADMON_DATABASE__URL": f"sqlite:///{tmp_path}/r.db"}
    assert run("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    stations = tmp_path / "stations.csv"
    stations.write_text(
        "station_id,name,lat,lon\nQN001,Hạ Long,20.95,107.08\nQN002,Cẩm Phả,21.01,107.29\n",
        encoding="utf-8",
    )
    assert run("stations", "import", str(stations), cwd=tmp_path, env=env).returncode == 0
    return env


def test_import_keeps_good_lines_refuses_bad_ones_and_export_round_trips(tmp_path: Path) -> None:
    env = _prepared(tmp_path)
    readings = tmp_path / "readings.csv"
    readings.write_text(
        "time,station_id,dose_rate_nsv_h,precip_mm_h\n"
        "2026-11-20T00:00:00Z,QN001,95.5,\n"
        "2026-11-20T00:10:00Z,QN001,abc,\n"
        "2026-11-20T00:00:00Z,QN002,101.0,2.5\n"
        "2026-11-20T00:00:00Z,XX999,90,\n",
        encoding="utf-8",
    )
    first = run("import", "csv", str(readings), cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "2 new reading(s)" in first.stdout and "2 refused" in first.stdout
    again = run("import", "csv", str(readings), cwd=tmp_path, env=env)
    assert "0 new reading(s), 2 already stored" in again.stdout

    letters = run("deadletter", "list", "--json", cwd=tmp_path, env=env)
    kept = [json.loads(line) for line in letters.stdout.splitlines()]
    assert sorted(d["origin"] for d in kept) == ["readings.csv:3", "readings.csv:5"]
    listed = run("deadletter", "list", cwd=tmp_path, env=env).stdout
    assert "import:csv readings.csv:3 (QN001): " in listed  # whose line it is, to fix it
    # a time without a zone is the office's (it told the operator to set a station's zone)
    later = run(
        "deadletter", "list", "--json", "--since", "2999-01-01T00:00", cwd=tmp_path, env=env
    )
    assert later.returncode == 0 and later.stdout == ""
    bad = run("deadletter", "list", "--since", "yesterday", cwd=tmp_path, env=env)
    assert bad.returncode == 2 and "--since" in bad.stderr
    assert all(d["source"] == "import:csv" and d["reason"] for d in kept)

    out = tmp_path / "out.csv"
    period = ["--start", "2026-11-19T00:00:00Z", "--end", "2026-11-21T00:00:00Z"]
    exported = run("export", "csv", *period, "--output", str(out), cwd=tmp_path, env=env)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["station_id"], float(r["dose_rate_nsv_h"])) for r in rows] == [
        ("QN001", 95.5),
        ("QN002", 101.0),
    ]


def test_bad_usage_exits_2_with_the_reason(tmp_path: Path) -> None:
    env = _prepared(tmp_path)
    unknown = run("import", "geiger", str(tmp_path / "stations.csv"), cwd=tmp_path, env=env)
    assert unknown.returncode == 2 and "geiger" in unknown.stderr
    missing = run("import", "csv", str(tmp_path / "nope.csv"), cwd=tmp_path, env=env)
    assert missing.returncode == 2 and "nope.csv" in missing.stderr
    naive = run(
        "export",
        "csv",
        "--start",
        "2026-11-19T00:00",
        "--end",
        "2026-11-20T00:00Z",
        "--output",
        "-",
        cwd=tmp_path,
        env=env,
    )
    assert naive.returncode == 2
    option = run(
        "import", "csv", str(tmp_path / "stations.csv"), "--option", "oops", cwd=tmp_path, env=env
    )
    assert option.returncode == 2 and "KEY=VALUE" in option.stderr


def test_a_file_of_another_format_exits_2_with_its_lines_kept(tmp_path: Path) -> None:
    # every line of a EURDEP file imported as bgeigie was refused, and the import "succeeded"
    env = _prepared(tmp_path)
    eurdep = tmp_path / "x.eurdep"
    eurdep.write_text("\\BEGIN_EURDEP;\n\\BEGIN_LOCALITY;\n\\END_EURDEP;\n", encoding="utf-8")
    result = run("import", "bgeigie", str(eurdep), cwd=tmp_path, env=env)
    assert result.returncode == 2 and "no line could be read as bgeigie" in result.stderr
    letters = run("deadletter", "list", "--json", cwd=tmp_path, env=env)
    assert len(letters.stdout.splitlines()) == 3  # kept, for whoever looks


def test_tokens_are_issued_only_for_known_stations(tmp_path: Path) -> None:
    env = _prepared(tmp_path)
    issued = run("tokens", "add", "QN001", "--label", "roof", cwd=tmp_path, env=env)
    assert issued.returncode == 0 and issued.stdout.strip().startswith("rmst_")
    assert run("tokens", "add", "XX1", cwd=tmp_path, env=env).returncode == 2
    revoked = run("tokens", "revoke", "QN001", cwd=tmp_path, env=env)
    assert "1 token(s) of QN001 revoked" in revoked.stdout
    typo = run("tokens", "revoke", "QN0001", cwd=tmp_path, env=env)  # said "0 revoked", exit 0
    assert typo.returncode == 2 and "no such station" in typo.stderr


def test_a_refused_export_leaves_the_output_file_as_it_was(tmp_path: Path) -> None:
    env = _prepared(tmp_path)
    kept = tmp_path / "kept.csv"
    kept.write_text("precious\n")
    period = ["--start", "2026-01-01T00:00:00Z", "--end", "2026-01-02T00:00:00Z"]
    refused = run(
        "export", "csv", *period, "-o", str(kept), "--station", "NOPE", cwd=tmp_path, env=env
    )
    assert refused.returncode == 2 and "NOPE" in refused.stderr
    assert kept.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    nowhere = run(
        "export", "csv", *period, "-o", str(tmp_path / "no" / "x.csv"), cwd=tmp_path, env=env
    )
    assert nowhere.returncode == 2 and "cannot write" in nowhere.stderr, nowhere.stderr
    done = run("export", "csv", *period, "-o", str(kept), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert kept.read_text().startswith("time,station_id,dose_rate_nsv_h")
