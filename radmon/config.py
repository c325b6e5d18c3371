"""Configuration: one YAML file plus ``RADMON_<SECTION>__<KEY>`` environment overrides.

Unknown keys and wrong types stop the program (exit 2) with the file, the key and the expected
type: a typo in a threshold must never fall back silently to a default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from radmon import times
from radmon.config_alerting import AlertingSettings
from radmon.errors import InputError, not_utf8
from radmon.models import Severity

ENV_PREFIX = "RADMON_"
CONFIG_ENV = "RADMON_CONFIG"


class Section(BaseModel):
    # no setting means infinity or NaN (--speed inf ran the demo into an error loop)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DatabaseSettings(Section):
    url: str = "sqlite:///radmon.db"
    pool_size: int = Field(default=5, ge=1)


class StoreSettings(Section):
    """TimescaleDB policies; ignored on plain PostgreSQL and SQLite."""

    timescaledb: bool | None = None  # None: use the extension when the server has it
    chunk_interval_days: int = Field(default=7, ge=1)
    compress_after_days: int | None = Field(default=30, ge=1)
    retention_days: int | None = Field(default=None, ge=1)


class MqttSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    tls: bool = False
    topic_prefix: str = "radmon/v1"
    client_id: str = "radmon-central"
    # a share name is one topic level: "g/x" subscribed group g to "x/radmon/v1/+/dose", which
    # nothing publishes, and the node looked healthy while it received no reading
    shared_group: str = Field(default="", pattern=r"^[^/+#]*$")
    enabled: bool = True  # radmon serve subscribes; radmon demo turns it off (no broker needed)
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    ca_file: str | None = None  # with tls: the CA that signed the broker's certificate
    session_expiry_s: int = Field(default=14 * 86400, ge=0)  # how long the broker keeps our queue


class IngestSettings(Section):
    """Central ingest: how readings are batched into the store and what is refused."""

    batch_size: int = Field(default=20_000, ge=1)  # readings per store write
    batch_wait_s: float = Field(default=0.2, gt=0, le=60)  # oldest unwritten reading's wait
    receive_maximum: int = Field(default=1000, ge=1, le=65535)  # unacknowledged messages in flight
    max_payload_bytes: int = Field(default=1_048_576, ge=64)
    max_future_skew_s: float = Field(default=300.0, ge=0)  # later than now + this is refused
    station_refresh_s: float = Field(default=10.0, ge=0)  # re-read stations for an unknown id


class ProbeSettings(Section):
    """One probe an edge collector polls (docs/edge.md)."""

    station_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    profile: str  # a shipped profile name (ingest/edge/profiles) or a path to a YAML profile
    transport: Literal["tcp", "rtu", "gmc"] = "tcp"
    host: str | None = Field(default=None, validate_default=True)  # tcp
    port: int = Field(default=502, ge=1, le=65535)  # tcp
    # rtu and gmc, e.g. /dev/ttyUSB0
    serial_port: str | None = Field(default=None, validate_default=True)
    baudrate: int = Field(default=9600, gt=0)  # unset: the profile's baudrate, if it names one
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = Field(default=1, ge=1, le=2)
    unit_id: int = Field(default=1, ge=0, le=247)
    interval_s: float = Field(default=60.0, gt=0)
    timeout_s: float = Field(default=3.0, gt=0)
    sensitivity_cps_per_usv_h: float | None = Field(default=None, gt=0)
    # consecutive failed polls before the station is reported offline
    offline_after: int = Field(default=2, ge=1)
    # reconnect backoff after a failed poll: doubles from initial to max, with jitter
    backoff_initial_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)

    @field_validator("host")
    @classmethod
    def _host_for_tcp(cls, value: str | None, info: Any) -> str | None:
        if info.data.get("transport") == "tcp" and not value:
            raise ValueError("required with transport 'tcp'")
        return value

    @field_validator("serial_port")
    @classmethod
    def _serial_port_for_serial(cls, value: str | None, info: Any) -> str | None:
        transport = info.data.get("transport")
        if transport in ("rtu", "gmc") and not value:
            raise ValueError(f"required with transport {transport!r}")
        return value


class EdgeSettings(Section):
    """An edge collector: its probes and its disk spool (store-and-forward, docs/edge.md)."""

    id: str = Field(default="edge-1", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    spool_path: str = "radmon-edge-spool.db"
    spool_max_mb: float = Field(default=512.0, gt=0)
    # full spool: drop_oldest keeps the newest readings, refuse_new keeps the oldest
    spool_full_policy: Literal["drop_oldest", "refuse_new"] = "drop_oldest"
    publish_batch: int = Field(default=100, ge=1, le=10000)  # readings per MQTT message
    publish_window: int = Field(default=32, ge=1, le=1000)  # messages awaiting PUBACK at once
    probes: list[ProbeSettings] = Field(default_factory=list)

    @field_validator("probes")
    @classmethod
    def _one_probe_per_station(cls, value: list[ProbeSettings]) -> list[ProbeSettings]:
        seen: set[str] = set()
        ports: set[str] = set()
        for probe in value:
            if probe.station_id in seen:
                raise ValueError(f"station_id {probe.station_id!r} is polled twice")
            seen.add(probe.station_id)
            # each probe opens its port alone, and a serial port opens once: a second probe
            # on the same bus would be offline for ever
            if probe.transport != "tcp" and probe.serial_port in ports:
                raise ValueError(
                    f"serial_port {probe.serial_port!r} has two probes; probes sharing one "
                    "RS-485 bus are not supported: give each probe its own port"
                )
            ports.add(probe.serial_port or "")
        return value


class WebSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tile_attribution: str = "&copy; OpenStreetMap contributors"
    # The map's offline base layer: a shipped outline's name (gis/outlines) or a GeoJSON path;
    # "" for none.
    outline_geojson: str = "quang_ninh"
    # Reverse proxies whose X-Forwarded-Proto/-For are believed (TLS ends there).
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    # Signs CSRF tokens; by default a random key kept in the database (same on every node).
    secret_key: SecretStr | None = None
    # A signed-in browser stays signed in this long at most, and this long without a request.
    session_hours: float = Field(default=24.0, gt=0)
    session_idle_minutes: float = Field(default=120.0, gt=0)
    # Failed logins per client address (and per user name) in login_window_minutes before
    # further tries get 429 until the window has passed.
    login_failures_per_address: int = Field(default=20, ge=1)
    login_failures_per_user: int = Field(default=5, ge=1)
    login_window_minutes: float = Field(default=15.0, gt=0)


class SiteSettings(Section):
    """The office that runs radmon: its name, local zone (daily buckets, SMS times) and language."""

    name: str = "Provincial radiation monitoring"
    timezone: str = "Asia/Ho_Chi_Minh"
    language: str = Field(default="vi", pattern=r"^(vi|en)$")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        times.zone(value)
        return value


class SimulatorSettings(Section):
    """The simulated province that ``radmon demo`` (or ``serve``, if enabled) streams live."""

    enabled: bool = False
    province: str = "quang_ninh"
    stations: int = Field(default=30, ge=1, le=5000)
    interval_s: int = Field(default=60, ge=1)
    seed: int = 1
    speed: float = Field(default=1.0, gt=0)
    backfill_hours: float = Field(default=24.0, ge=0)


class DetectionSettings(Section):
    """The streaming detection engine (detectors/): thresholds, sensitivity, hysteresis.

    Defaults are chosen for 1- to 10-minute dose-rate data; docs/detection.md shows what they
    give on simulated provinces.
    """

    enabled: bool = True
    # Run the streaming engine in a process of its own (serve and demo): it then has a core to
    # itself instead of taking the ingest's share of the GIL (docs/benchmarks.md).
    own_process: bool = True
    # Absolute levels (nSv/h) and the severity from each upwards: IAEA OIL-based defaults
    # (1 µSv/h alert; 100 µSv/h and 1000 µSv/h emergency). Per-station overrides by id.
    levels: dict[str, Severity] = Field(
        default_factory=lambda: {
            "1000": Severity.ALERT,
            "100000": Severity.EMERGENCY,
            "1000000": Severity.EMERGENCY,
        }
    )
    station_levels: dict[str, dict[str, Severity]] = Field(default_factory=dict)
    # The smallest relative step the CUSUM is tuned for, and its threshold (log-likelihood).
    step_relative: float = Field(default=0.10, gt=0, le=10)
    cusum_threshold: float = Field(default=12.0, gt=0)
    # A single reading this many sigma and this fraction above the baseline: a passing source.
    transient_sigma: float = Field(default=7.0, gt=0)
    transient_relative: float = Field(default=0.5, gt=0)
    # Neighbours (km) whose rain gauges stand in for a station without one, and that count
    # as "rising together".
    neighbour_km: float = Field(default=25.0, gt=0)
    # Baseline: time constants of the level and the diurnal profile, and the warm-up.
    baseline_days: float = Field(default=3.0, gt=0)
    profile_days: float = Field(default=14.0, gt=0)
    warmup_hours: float = Field(default=24.0, ge=0)
    # History read from the store to warm the engine up when it has no saved state.
    warmup_history_days: float = Field(default=7.0, ge=0)
    # An episode closes after the station has been back to normal this long.
    clear_after_s: float = Field(default=3600.0, ge=0)
    # Technical detectors.
    offline_after_s: float = Field(default=1800.0, gt=0)
    stuck_readings: int = Field(default=6, ge=2)
    range_min_nsv_h: float = Field(default=5.0, ge=0)
    range_max_nsv_h: float = Field(default=1e10, gt=0)
    noise_ratio: float = Field(default=3.0, gt=1)
    max_future_skew_s: float = Field(default=300.0, ge=0)
    # How often serve saves the engine's state (a restart replays readings stored since).
    state_save_s: float = Field(default=60.0, gt=0)

    @field_validator("levels")
    @classmethod
    def _numeric_levels(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        return _dose_levels(value)

    @field_validator("station_levels")
    @classmethod
    def _numeric_station_levels(
        cls, value: dict[str, dict[str, Severity]]
    ) -> dict[str, dict[str, Severity]]:
        return {station: _dose_levels(levels) for station, levels in value.items()}


def _dose_levels(levels: dict[str, Severity]) -> dict[str, Severity]:
    """Level keys are dose rates (nSv/h), written as strings because YAML keys are."""
    for key in levels:
        try:
            if not float(key) > 0:
                raise ValueError
        except ValueError:
            raise ValueError(f"level {key!r}: expected a dose rate in nSv/h > 0") from None
    return levels


class Settings(BaseSettings):
    """All of radmon's settings; every section is optional."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
        env_parse_none_str="null",  # RADMON_STORE__RETENTION_DAYS=null sets a nullable key to null
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    site: SiteSettings = Field(default_factory=SiteSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file, which arrives as init data.
        return env_settings, init_settings


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping: YAML keeps the last, so a
    second ``database:`` section silently replaced the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if not isinstance(key, str | int | float | bool):
                continue  # a complex key: the SafeLoader says what is wrong with it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read configuration: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise not_utf8(path) from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no code from YAML
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: the top level must be a mapping of sections")
    return data


_EXPECTED = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "text",
    "model_type": "a mapping",
    "dict_type": "a mapping",
    "extra_forbidden": "no such key",
}


def _describe(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        where = _source_of(err["loc"], origin)
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}: unknown key {key!r}")
        elif err["type"] == "value_error":  # a validator's own sentence says what is wrong
            lines.append(f"{where}: key {key!r}: {err['msg'].removeprefix('Value error, ')}")
        else:
            got = repr(err.get("input"))
            got = got if len(got) <= 80 else got[:77] + "..."  # a 100,000-character name
            if err["type"] in _EXPECTED:
                said = f"expected {_EXPECTED[err['type']]}"
            else:  # pydantic's own sentence: "Input should be a finite number"
                said = err["msg"][:1].lower() + err["msg"][1:]
            lines.append(f"{where}: key {key!r}: {said}, got {got}")
    return "\n".join(lines)


def _source_of(loc: tuple[int | str, ...], origin: str) -> str:
    """The environment variable that set the key at *loc* (``RADMON_MQTT__PORT``, or a whole
    section as JSON, ``RADMON_MQTT``), else *origin*, the file or the defaults."""
    parts = [str(p).upper() for p in loc]
    for depth in range(len(parts), 0, -1):
        name = ENV_PREFIX + "__".join(parts[:depth])
        if name in os.environ:
            return f"environment {name}"
    return origin


def _not_json(exc: SettingsError) -> InputError:
    """Which ``RADMON_*`` variable holding a list, a mapping or a whole section is not JSON
    (pydantic-settings names only the section)."""
    for name, section, key in _radmon_variables():
        field = Settings.model_fields.get(section)
        if field is None:
            continue
        if key:
            model = field.annotation
            inner = model.model_fields.get(key) if _is_model(model) else None  # type: ignore[union-attr]
            if inner is None or not _structured(inner.annotation):
                continue
        try:
            json.loads(os.environ[name])
        except ValueError:
            return InputError(
                f'environment {name}: expected JSON (a list such as ["a", "b"] or a '
                f'mapping such as {{"key": 1}}), got {os.environ[name][:60]!r}'
            )
    return InputError(f"the environment: {exc}")


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def _structured(annotation: Any) -> bool:
    """A list, mapping or model (or one of them or None): set from the environment as JSON."""
    kinds = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    return any(get_origin(k) in (list, dict, tuple, set) or _is_model(k) for k in kinds)


def _radmon_variables() -> Iterator[tuple[str, str, str]]:
    """(variable, section, key) of every ``RADMON_*`` variable but ``RADMON_CONFIG``; the key
    is empty for a whole section given as JSON."""
    for name in os.environ:
        upper = name.upper()
        if upper.startswith(ENV_PREFIX) and upper != CONFIG_ENV:
            section, _, key = upper[len(ENV_PREFIX) :].lower().partition("__")
            yield name, section, key


def _check_env_names() -> None:
    """Reject ``RADMON_*`` variables that name no key: a typo there is as silent as in the file."""
    for name, section, key in _radmon_variables():
        field = Settings.model_fields.get(section)
        if field is None:
            raise InputError(f"environment {name}: no configuration section {section!r}")
        model = field.annotation
        if key and isinstance(model, type) and key not in model.model_fields:
            raise InputError(f"environment {name}: section {section!r} has no key {key!r}")


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Load settings from *path* (or ``RADMON_CONFIG``), the environment, then *overrides*.

    *overrides* are section dicts applied last (the CLI's own flags, such as ``--port``).
    """
    _check_env_names()
    chosen = path or os.environ.get(CONFIG_ENV) or None
    data: dict[str, Any] = _read_yaml(Path(chosen)) if chosen else {}
    origin = str(chosen) if chosen else "embedded defaults"
    try:
        settings = Settings(**data)
    except SettingsError as exc:  # a list, mapping or section from the environment, not JSON
        raise _not_json(exc) from exc
    except ValidationError as exc:
        raise InputError(_describe(exc, origin)) from exc
    try:
        for section, values in overrides.items():
            target = getattr(settings, section)
            for key, value in values.items():
                setattr(target, key, value)
    except ValidationError as exc:
        raise InputError(_describe(exc, origin)) from exc
    return settings
