"""A bad profile or probe configuration stops ``radmon edge``: exit 2, naming file and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ingest.edge import load_profile, plan_probes, shipped_profiles
from radmon.config import load_settings
from radmon.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def _edge(tmp_path: Path, edge: dict, name: str = "edge.yaml") -> Path:
    path = tmp_path / name
    edge = {"spool_path": str(tmp_path / "spool.db"), **edge}
    path.write_text(yaml.safe_dump({"edge": edge}), encoding="utf-8")
    return path


def _run(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "radmon", "edge", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_shipped_profiles_load() -> None:
    names = shipped_profiles()
    assert {"generic-float32", "gm-cps", "gq-gmc", "gq-gmc-legacy"} <= set(names)
    for name in names:
        assert load_profile(name).name == name


def test_bad_profile_exits_2_naming_the_profile_file_and_key(tmp_path: Path) -> None:
    profile = tmp_path / "my-probe.yaml"
    profile.write_text(
        "name: my-probe\ndose_rate: {address: 0, function: 6, type: float32, unit: uSv/h}\n"
    )
    config = _edge(
        tmp_path, {"probes": [{"station_id": "S1", "profile": str(profile), "host": "h"}]}
    )
    result = _run(config)
    assert result.returncode == 2, result.stderr
    assert str(profile) in result.stderr and "dose_rate.function" in result.stderr


def test_profile_with_a_unit_radmon_cannot_convert_is_refused(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\ndose_rate: {address: 0, unit: mR/h}\n")
    with pytest.raises(InputError, match=r"p\.yaml: key 'dose_rate\.unit'"):
        load_profile(str(profile))


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ("{address: 0, unit: nSv/h, scale: .nan}", "dose_rate.scale"),
        ("{address: 0, unit: nSv/h, offset: .inf}", "dose_rate.offset"),
        ("{address: 65535, type: float32, unit: nSv/h}", "dose_rate"),
    ],
)
def test_a_register_that_can_never_be_read_or_scaled_is_refused(
    tmp_path: Path, spec: str, key: str
) -> None:
    """Accepted at start, each failed on every reading ("not a finite number") or never read."""
    profile = tmp_path / "p.yaml"
    profile.write_text(f"name: p\ndose_rate: {spec}\n")
    with pytest.raises(InputError, match=rf"key '{key}'"):
        load_profile(str(profile))


@pytest.mark.parametrize("kind", ["directory", "text file"])
def test_a_spool_path_that_cannot_be_a_spool_exits_2_naming_the_key(
    tmp_path: Path, kind: str
) -> None:
    spool = tmp_path / "spool"
    if kind == "directory":
        spool.mkdir()
    else:
        spool.write_text("not a database\n" * 100)
    result = _run(_edge(tmp_path, {"spool_path": str(spool)}))
    assert result.returncode == 2, result.stderr
    assert "edge.spool_path" in result.stderr and "Traceback" not in result.stderr


def test_unknown_key_in_profile_is_refused(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\ndose_rate: {address: 0, unit: nSv/h, scal: 2}\n")
    with pytest.raises(InputError, match=r"unknown key 'dose_rate\.scal'"):
        load_profile(str(profile))


def test_unknown_profile_name_names_the_configuration_key(tmp_path: Path) -> None:
    config = _edge(tmp_path, {"probes": [{"station_id": "S1", "profile": "nope", "host": "h"}]})
    result = _run(config)
    assert result.returncode == 2
    assert "edge.probes.0.profile" in result.stderr and "generic-float32" in result.stderr


def test_bad_probe_configuration_exits_2_naming_the_file_and_key(tmp_path: Path) -> None:
    config = _edge(tmp_path, {"probes": [{"station_id": "S1", "profile": "generic-float32"}]})
    result = _run(config)
    assert result.returncode == 2
    assert str(config) in result.stderr and "edge.probes.0.host" in result.stderr


def test_counting_profile_without_sensitivity_is_refused(tmp_path: Path) -> None:
    profile = tmp_path / "cps.yaml"
    profile.write_text("name: cps\ndose_rate: {address: 0, unit: cps}\n")
    settings = load_settings(
        edge={"probes": [{"station_id": "S1", "profile": str(profile), "host": "h"}]}
    )
    with pytest.raises(InputError, match=r"edge\.probes\.0\.sensitivity_cps_per_usv_h"):
        plan_probes(settings.edge)


def test_transport_must_suit_the_profile_driver() -> None:
    settings = load_settings(
        edge={"probes": [{"station_id": "S1", "profile": "gq-gmc", "host": "h"}]}
    )
    with pytest.raises(InputError, match=r"edge\.probes\.0\.transport"):
        plan_probes(settings.edge)


def test_two_probes_on_one_serial_port_are_refused() -> None:
    # pymodbus opens a serial port exclusively: the second probe was offline for ever
    probes = [
        {
            "station_id": f"S{n}",
            "profile": "generic-float32",
            "transport": "rtu",
            "serial_port": "/dev/ttyUSB0",
            "unit_id": n,
        }
        for n in (1, 2)
    ]
    with pytest.raises(InputError, match="serial_port '/dev/ttyUSB0' has two probes"):
        load_settings(edge={"probes": probes})
