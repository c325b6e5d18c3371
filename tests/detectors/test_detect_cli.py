"""``radmon detect`` as users drive it: real processes, real files, exit codes (CONTRACTS,
"Detection files")."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from radmon.errors import InputError

RADMON = [sys.executable, "-m", "radmon"]
HEADER = "station_id,start,end,kind,category,severity,peak_nsv_h,baseline_nsv_h"
CATEGORIES = {"radiological", "technical"}
SEVERITIES = {"info", "warning", "alert", "emergency"}
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def radmon(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADMON_")}
    return subprocess.run(
        [*RADMON, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


class Files:
    def __init__(self, root: Path):
        self.root = root
        self.readings = root / "r.csv"
        self.events = root / "e.csv"
        self.stations = root / "s.csv"
        self.alarms = root / "a.csv"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Files:
    """A 4-day province of 8 stations and its alarms, made once through the CLI."""
    files = Files(tmp_path_factory.mktemp("detect"))
    made = radmon(
        "simulate",
        "--stations", "8",
        "--days", "4",
        "--seed", "3",
        "--output", files.readings,
        "--events", files.events,
        "--stations-csv", files.stations,
        "--start", "2026-06-01T00:00:00Z",
        cwd=files.root,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    found = detect(files, files.readings, files.alarms)
    assert found.returncode == 0, found.stderr
    return files


def detect(files: Files, readings: Path, alarms: Path, stations: bool = True):
    extra = ("--stations", files.stations) if stations else ()
    return radmon("detect", "--input", readings, "--output", alarms, *extra, cwd=files.root)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def check_contract(path: Path, station_ids: set[str]) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == HEADER
    found = rows(path)
    for row in found:
        assert row["station_id"] in station_ids
        assert row["kind"]
        assert row["category"] in CATEGORIES
        assert row["severity"] in SEVERITIES
        assert ISO_Z.match(row["start"]), row
        assert row["end"] == "" or ISO_Z.match(row["end"]), row
        assert row["end"] == "" or row["end"] >= row["start"], row
        for column in ("peak_nsv_h", "baseline_nsv_h"):
            assert row[column] == "" or float(row[column]) >= 0, row
    return found


def test_detect_writes_the_contract_alarms_csv(simulated: Files) -> None:
    stations = {r["station_id"] for r in rows(simulated.stations)}
    assert len(stations) == 8
    found = check_contract(simulated.alarms, stations)
    assert any(r["category"] == "radiological" for r in found)
    # the injected sources are found where and when they were
    alarms = {(r["station_id"], r["kind"], r["start"]) for r in found}
    events = rows(simulated.events)
    passing = [e for e in events if e["kind"] == "passing_source"]
    assert passing
    for event in passing:
        assert (event["station_ids"], "transient", event["start"]) in alarms, event
    strong = [
        e for e in events if e["kind"] == "source_near_station" and float(e["magnitude"]) >= 0.5
    ]
    for event in strong:
        start = pd.Timestamp(event["start"])
        assert any(
            r["station_id"] == event["station_ids"]
            and r["category"] == "radiological"
            and start <= pd.Timestamp(r["start"]) <= start + pd.Timedelta("1h")
            for r in found
        ), event


def test_detect_is_byte_identical_run_again_and_in_any_row_order(simulated: Files) -> None:
    again = simulated.root / "again.csv"
    assert detect(simulated, simulated.readings, again).returncode == 0
    assert again.read_bytes() == simulated.alarms.read_bytes()

    table = pd.read_csv(simulated.readings, dtype=str, keep_default_na=False)
    shuffled = simulated.root / "shuffled.csv"
    table.sample(frac=1.0, random_state=11).to_csv(shuffled, index=False)
    out = simulated.root / "shuffled-alarms.csv"
    result = detect(simulated, shuffled, out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == simulated.alarms.read_bytes()


def test_extra_columns_are_ignored(simulated: Files) -> None:
    table = pd.read_csv(simulated.readings, dtype=str, keep_default_na=False)
    table.insert(0, "note", "hello, world")
    table["battery_v"] = "not a number"
    wider = simulated.root / "wider.csv"
    table.to_csv(wider, index=False)
    out = simulated.root / "wider-alarms.csv"
    result = detect(simulated, wider, out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == simulated.alarms.read_bytes()


def test_precip_column_is_optional(simulated: Files) -> None:
    table = pd.read_csv(simulated.readings, dtype=str, keep_default_na=False)
    assert (table["precip_mm_h"] != "").any()  # some stations have gauges
    narrow = simulated.root / "no-precip.csv"
    table.drop(columns=["precip_mm_h"]).to_csv(narrow, index=False)
    out = simulated.root / "no-precip-alarms.csv"
    result = detect(simulated, narrow, out)
    assert result.returncode == 0, result.stderr
    stations = {r["station_id"] for r in rows(simulated.stations)}
    found = check_contract(out, stations)
    # without rain the detectors still see the passing sources
    alarms = {(r["station_id"], r["kind"], r["start"]) for r in found}
    for event in rows(simulated.events):
        if event["kind"] == "passing_source":
            assert (event["station_ids"], "transient", event["start"]) in alarms


def test_detect_without_stations_csv(simulated: Files) -> None:
    out = simulated.root / "bare-alarms.csv"
    result = detect(simulated, simulated.readings, out, stations=False)
    assert result.returncode == 0, result.stderr
    check_contract(out, {r["station_id"] for r in rows(simulated.stations)})
    # judged blind (no neighbours, gauges or counting noise): the operator is told so
    n = len(rows(simulated.stations))
    assert f"warning: {n} station(s) not in --stations" in result.stderr


GOOD = (
    "time,station_id,dose_rate_nsv_h,precip_mm_h\n"
    "2026-06-01T00:00:00Z,QN001,100.5,\n"
    "2026-06-01T00:00:00Z,QN002,98.1,0.0\n"
    "2026-06-01T00:10:00Z,QN001,101.0,\n"
)


BAD_INPUT = [
    (GOOD + "2026-06-01T00:10:00,QN002,99.0,\n", "line 5: time"),
    (GOOD.replace("98.1", "abc"), "line 3: dose_rate_nsv_h"),
    (GOOD + "2026-06-01T00:20:00Z,QN002,,\n", "line 5: dose_rate_nsv_h"),
    (GOOD.replace("0.0\n", "heavy\n"), "line 3: precip_mm_h"),
    (GOOD.replace(",dose_rate_nsv_h", ",dose"), "line 1: missing column(s) dose_rate_nsv_h"),
    (GOOD.replace("time,", "when,"), "line 1: missing column(s) time"),
    (GOOD + "\n\n2026-06-01T00:20:00Z,QN002,x,\n", "line 7: dose_rate_nsv_h"),  # said 5
    (GOOD + "3000-01-01T00:00:00Z,QN002,99,\n", "line 5: time"),  # a mistyped year
    (GOOD.replace("QN001,100.5", "QN001,\udcff"), "line 2: not UTF-8"),
    # a decimal comma shifts the row: the fraction was read as the rain rate, or dropped
    (GOOD.replace("QN002,98.1,0.0", "QN002,98,1,0.0"), "line 3: more cells than the header"),
    (GOOD.replace("QN002,98.1,0.0", "QN002,98,1,0,0"), "line 3: more cells than the header"),
    ("time,station_id,dose_rate_nsv_h\n2026-06-01T00:00:00Z,QN001,105,2\n", "line 2: more cells"),
    (GOOD.replace("98.1,0.0", "98.1,-3"), "line 3: precip_mm_h: -3 is outside"),
    (GOOD.replace("98.1,0.0", "98.1,1e308"), "line 3: precip_mm_h: 1e+308 is outside"),
]
BAD_IDS = [
    "time-without-zone",
    "dose-not-a-number",
    "dose-empty",
    "precip-word",
    "no-dose",
    "no-time",
    "line-after-blank-lines",
    "year-3000",
    "not-utf8",
    "decimal-comma-into-precip",
    "decimal-commas-beyond-one-extra",
    "decimal-comma-dropped",
    "precip-negative",
    "precip-absurd",
]


def test_bad_input_exits_2_from_a_real_process(tmp_path: Path) -> None:
    text, where = BAD_INPUT[0]
    bad = tmp_path / "bad.csv"
    bad.write_text(text, encoding="utf-8")
    out = tmp_path / "alarms.csv"
    result = radmon("detect", "--input", bad, "--output", out, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert f"{bad}: {where}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(("text", "where"), BAD_INPUT, ids=BAD_IDS)
def test_bad_input_exits_2_naming_file_line_and_field(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    where: str,
) -> None:
    """The console entry point in-process (the same code as the process above, faster)."""
    from radmon.cli import main

    bad = tmp_path / "bad.csv"
    bad.write_bytes(text.encode("utf-8", "surrogateescape"))
    out = tmp_path / "alarms.csv"
    for name in [n for n in os.environ if n.startswith("RADMON_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "argv", ["radmon", "detect", "--input", str(bad), "-o", str(out)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert f"{bad}: {where}" in capsys.readouterr().err
    assert not out.exists()


def test_zones_written_the_other_ways_and_a_trailing_comma_are_read(tmp_path: Path) -> None:
    # "…z" (RFC 3339) was "not ISO 8601", "+07" had "no zone", and a trailing comma on every
    # row made pandas take the times for an index: "'QN001' has no zone"
    text = (
        "time,station_id,dose_rate_nsv_h\n"
        "2026-06-01T00:00:00z,QN001,100,\n"
        "2026-06-01T07:10:00+07,QN001,101,\n"
    )
    path = tmp_path / "zones.csv"
    path.write_text(text, encoding="utf-8")
    from detectors.files import read_readings_csv

    frame = read_readings_csv(path)
    assert list(frame["time"].dt.strftime("%H:%M")) == ["00:00", "00:10"]
    assert list(frame["station_id"]) == ["QN001", "QN001"]


def test_a_time_without_a_zone_is_read_in_its_stations_zone_from_stations(
    tmp_path: Path,
) -> None:
    """ARCHITECTURE: a time without a zone is refused unless the station's zone is known; a
    stations file that names it was not enough for ``radmon detect``."""
    from detectors.files import read_readings_csv

    path = tmp_path / "naive.csv"
    path.write_text(
        "time,station_id,dose_rate_nsv_h\n"
        "2026-06-01T07:00:00,QN001,100\n"
        "2026-06-01T00:10:00Z,QN001,101\n"
        "2026-06-01T09:00:00,PAR01,99\n",
        encoding="utf-8",
    )
    zones = {"QN001": "Asia/Ho_Chi_Minh", "PAR01": "Europe/Paris"}
    frame = read_readings_csv(path, zones)
    assert list(frame["time"].dt.strftime("%Y-%m-%dT%H:%MZ")) == [
        "2026-06-01T00:00Z",
        "2026-06-01T00:10Z",
        "2026-06-01T07:00Z",
    ]
    with pytest.raises(InputError, match=r"line 4: time: .* has no zone .*--stations"):
        read_readings_csv(path, {"QN001": "Asia/Ho_Chi_Minh"})
    skipped = tmp_path / "skipped.csv"  # 02:30 does not exist in Paris on 29 March 2026
    skipped.write_text(
        "time,station_id,dose_rate_nsv_h\n2026-03-29T02:30:00,PAR01,99\n", encoding="utf-8"
    )
    with pytest.raises(InputError, match="Europe/Paris"):
        read_readings_csv(skipped, zones)


def test_good_small_file_gives_an_empty_alarms_table(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(GOOD, encoding="utf-8")
    out = tmp_path / "alarms.csv"
    result = radmon("detect", "--input", good, "--output", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == HEADER + "\n"


def test_detect_result_does_not_depend_on_the_wall_clock(simulated: Files) -> None:
    table = pd.read_csv(simulated.readings, dtype=str, keep_default_na=False)
    times = pd.to_datetime(table["time"], utc=True)
    # whole weeks (the same local hours), far enough that the data lies a year ahead of now
    weeks = (pd.Timestamp.now(tz="UTC") - times.min()).days // 7 + 53
    shift = pd.Timedelta(weeks=weeks)
    moved = times + shift
    table["time"] = moved.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    later = simulated.root / "later.csv"
    table.to_csv(later, index=False)
    out = simulated.root / "later-alarms.csv"
    assert detect(simulated, later, out).returncode == 0
    expected = pd.read_csv(simulated.alarms, dtype=str, keep_default_na=False)
    for column in ("start", "end"):
        expected[column] = [
            "" if value == "" else (pd.Timestamp(value) + shift).strftime("%Y-%m-%dT%H:%M:%SZ")
            for value in expected[column]
        ]
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(got, expected)


def test_a_time_repeated_with_another_value_gives_the_same_alarms_in_any_order(
    simulated: Files,
) -> None:
    table = pd.read_csv(simulated.readings, dtype=str, keep_default_na=False)
    repeat = table.iloc[[len(table) // 2]].assign(dose_rate_nsv_h="5000")
    outputs = []
    for name, rows in (("last", [table, repeat]), ("first", [repeat, table])):
        path = simulated.root / f"repeat-{name}.csv"
        pd.concat(rows).to_csv(path, index=False)
        out = simulated.root / f"repeat-{name}-alarms.csv"
        assert detect(simulated, path, out).returncode == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert b"5000.00" in outputs[0]  # the higher value is the one judged


def test_an_episode_open_at_the_end_of_a_file_has_its_true_peak() -> None:
    # An open episode is re-emitted only when its peak grows by 5 %: the table kept 148 of 154.
    from detectors.frames import detect_frame
    from radmon.config import load_settings

    settings = load_settings(detection={"station_levels": {"A": {"50": "alert"}}}).detection
    times = pd.to_datetime(
        ["2026-01-03T06:00:00Z", "2026-01-03T06:10:00Z", "2026-01-03T06:20:00Z"], utc=True
    )
    table = pd.DataFrame({"time": times, "station_id": "A", "dose_rate_nsv_h": [100, 148, 154]})
    alarms = detect_frame(table, settings=settings, now=float("inf"))
    assert list(alarms["peak_nsv_h"]) == [154.0]
