from pathlib import Path

import pytest

from radmon.config import load_settings
from radmon.errors import InputError


def test_embedded_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RADMON_CONFIG", raising=False)
    settings = load_settings()
    assert settings.database.url.startswith("sqlite:///")
    assert (settings.mqtt.host, settings.mqtt.port) == ("127.0.0.1", 1883)
    assert settings.mqtt.topic_prefix == "radmon/v1"
    assert settings.mqtt.shared_group == ""
    assert (settings.web.host, settings.web.port) == ("127.0.0.1", 8080)
    assert settings.site.timezone == "Asia/Ho_Chi_Minh"
    assert settings.site.language == "vi"


def test_yaml_file_then_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "radmon.yaml"
    path.write_text("mqtt:\n  port: 1884\n  host: broker\nweb:\n  port: 9000\n")
    monkeypatch.setenv("RADMON_MQTT__PORT", "1999")
    settings = load_settings(path)
    assert settings.mqtt.port == 1999  # the environment wins
    assert settings.mqtt.host == "broker"  # the file wins over the default
    assert settings.web.port == 9000


def test_radmon_config_variable_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("database:\n  url: postgresql://radmon@db:5432/radmon\n")
    monkeypatch.setenv("RADMON_CONFIG", str(path))
    assert load_settings().database.url == "postgresql://radmon@db:5432/radmon"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mqtt:\n  port: abc\n", "key 'mqtt.port': expected an integer, got 'abc'"),
        ("mqtt:\n  prot: 1883\n", "unknown key 'mqtt.prot'"),
        ("mqt:\n  port: 1883\n", "unknown key 'mqt'"),
        ("site:\n  timezone: Asia/Hanoi_Typo\n", "site.timezone"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("mqtt: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_files_name_file_key_and_type(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_settings(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_bad_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADMON_WEB__PORT", "eighty")
    with pytest.raises(InputError, match="environment RADMON_WEB__PORT"):
        load_settings()
    monkeypatch.delenv("RADMON_WEB__PORT")
    monkeypatch.setenv("RADMON_WEB__PROT", "80")
    with pytest.raises(InputError, match="RADMON_WEB__PROT"):
        load_settings()


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml")


def test_null_in_the_environment_sets_a_nullable_key_to_null(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "every key can be overridden": a key the file sets could not be set back to null
    path = tmp_path / "radmon.yaml"
    path.write_text("store:\n  timescaledb: true\n  retention_days: 365\n")
    monkeypatch.setenv("RADMON_STORE__TIMESCALEDB", "null")
    monkeypatch.setenv("RADMON_STORE__RETENTION_DAYS", "null")
    settings = load_settings(path)
    assert (settings.store.timescaledb, settings.store.retention_days) == (None, None)


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_no_setting_is_infinite(tmp_path: Path, value: str) -> None:
    # simulator.speed inf started a demo whose detectors failed twice a second, forever
    path = tmp_path / "radmon.yaml"
    path.write_text(f"simulator:\n  speed: {value}\n")
    with pytest.raises(InputError, match=r"simulator\.speed"):
        load_settings(path)


def test_a_huge_bad_value_is_shortened_in_the_message(tmp_path: Path) -> None:
    path = tmp_path / "radmon.yaml"
    path.write_text("mqtt:\n  port: " + "9" * 1000 + "x\n")
    with pytest.raises(InputError) as caught:
        load_settings(path)
    assert "mqtt.port" in str(caught.value) and len(str(caught.value)) < 300


def test_a_configuration_that_is_not_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "radmon.yaml"
    path.write_bytes(b"mqtt:\n  host: h\xe1\n")
    with pytest.raises(InputError) as caught:
        load_settings(path)
    assert f"{path}: line 2: not UTF-8" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RADMON_WEB__TRUSTED_PROXIES", "10.0.0.1", "environment RADMON_WEB__TRUSTED_PROXIES"),
        ("RADMON_DETECTION__LEVELS", "{bad", "environment RADMON_DETECTION__LEVELS"),
        ("RADMON_MQTT", '{"prot": 1}', "environment RADMON_MQTT: unknown key 'mqtt.prot'"),
    ],
)
def test_the_environment_variable_at_fault_is_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    # "error parsing value for field "web" from source "EnvSettingsSource"", or the YAML blamed
    monkeypatch.setenv(name, value)
    with pytest.raises(InputError) as caught:
        load_settings()
    assert message in str(caught.value)


@pytest.mark.parametrize("group", ["g/x", "g+", "#"])
def test_a_shared_group_is_one_topic_level(monkeypatch: pytest.MonkeyPatch, group: str) -> None:
    monkeypatch.setenv("RADMON_MQTT__SHARED_GROUP", group)
    with pytest.raises(InputError, match="RADMON_MQTT__SHARED_GROUP"):
        load_settings()


def test_a_key_given_twice_in_the_file_is_refused(tmp_path: Path) -> None:
    # YAML keeps the last: a second database section silently replaced the first
    path = tmp_path / "radmon.yaml"
    path.write_text("database:\n  url: sqlite:///a.db\nweb:\n  port: 8081\ndatabase:\n  url: x\n")
    with pytest.raises(InputError, match="key 'database' is given twice"):
        load_settings(path)
    path.write_text("web:\n  port: 8081\n  port: 8082\n")
    with pytest.raises(InputError, match="key 'port' is given twice"):
        load_settings(path)
