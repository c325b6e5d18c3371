"""The files in deploy/: the example configuration loads, compose wires the stack together, and the
broker configuration keeps queued readings across restarts and beyond Mosquitto's default limit.

Broker tests run the local ``mosquitto`` binary on a free loopback port with a temporary copy of
deploy/mosquitto/mosquitto.conf (paths moved into tmp_path); they never touch a running broker.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from radmon.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
EXAMPLE = DEPLOY / "radmon.yaml"
BROKER_CONF = DEPLOY / "mosquitto" / "mosquitto.conf"
BROKER_ACL = DEPLOY / "mosquitto" / "acl"

MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)),
    None,
)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
needs_mosquitto = pytest.mark.skipif(
    MOSQUITTO is None, reason="no mosquitto binary on PATH: cannot run the broker configuration"
)
needs_mosquitto_passwd = pytest.mark.skipif(
    MOSQUITTO is None or MOSQUITTO_PASSWD is None,
    reason="no mosquitto / mosquitto_passwd binary on PATH: cannot check authentication and ACL",
)


@pytest.fixture(autouse=True)
def _no_radmon_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own RADMON_* variables must not leak into what the example file gives."""
    for name in list(os.environ):
        if name.upper().startswith("RADMON_"):
            monkeypatch.delenv(name)


# --- deploy/radmon.yaml ---------------------------------------------------------------------------


def test_example_config_loads_with_production_values() -> None:
    settings = load_settings(EXAMPLE)

    assert settings.site.timezone == "Asia/Ho_Chi_Minh"
    assert settings.site.language == "vi"
    assert settings.mqtt.topic_prefix == "radmon/v1"
    assert settings.mqtt.host == "mosquitto"
    assert settings.database.url.startswith("postgresql://")
    assert "@timescaledb:5432/" in settings.database.url
    assert settings.simulator.enabled is False
    # Secrets come from the environment, never from the example file.
    assert settings.mqtt.password is None
    assert ":" not in settings.database.url.removeprefix("postgresql://").split("@")[0]


def test_example_config_lists_every_section_and_key() -> None:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))

    for section, field in Settings.model_fields.items():
        assert section in raw, f"deploy/radmon.yaml lacks section {section!r}"
        model = field.annotation
        assert isinstance(model, type)
        missing = set(model.model_fields) - set(raw[section] or {})
        assert not missing, f"deploy/radmon.yaml: section {section!r} lacks {sorted(missing)}"


# --- deploy/compose.yaml --------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}``: the environment's value, else the default."""

    def one(match: re.Match[str]) -> str:
        return os.environ.get(match[1]) or (match[2] or "")

    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", one, value)


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Short-syntax volumes of a service as {target: source}."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target, *_ = entry.split(":")
        mounts[target] = source
    return mounts


def test_compose_has_the_three_services_wired_together() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"timescaledb", "mosquitto", "radmon"} <= set(services)
    declared_volumes = set(compose.get("volumes") or {})

    db = services["timescaledb"]
    assert db["image"].startswith("timescale/timescaledb:")
    assert "pg" in db["image"].split(":")[1]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert _mounts(db)["/var/lib/postgresql/data"] in declared_volumes
    assert db["environment"]["POSTGRES_DB"] == "radmon"
    assert db["environment"]["POSTGRES_USER"] == "radmon"
    assert db["environment"]["POSTGRES_PASSWORD"].startswith("${DB_PASSWORD")

    broker = services["mosquitto"]
    assert broker["image"] == "eclipse-mosquitto:2"
    broker_mounts = _mounts(broker)
    assert broker_mounts["/mosquitto/data"] in declared_volumes
    config_dir = (DEPLOY / broker_mounts["/mosquitto/config"]).resolve()
    assert (config_dir / "mosquitto.conf").is_file()
    assert (config_dir / "acl").is_file()
    assert any(str(p).split(":")[-1] == "1883" for p in broker["ports"])

    app = services["radmon"]
    context = (DEPLOY / app["build"]["context"]).resolve()
    assert (context / "pyproject.toml").is_file()
    assert (context / app["build"]["dockerfile"]).is_file()
    assert app["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    assert "mosquitto" in app["depends_on"]
    assert app["restart"] == "unless-stopped"
    assert app["ports"] == ["127.0.0.1:8080:8080"]
    command = " ".join(app["command"]) if isinstance(app["command"], list) else app["command"]
    assert command.index("radmon db upgrade") < command.index("radmon serve")
    assert (DEPLOY / _mounts(app)["/etc/radmon/radmon.yaml"]).resolve() == EXAMPLE.resolve()


def test_compose_environment_and_example_config_give_a_working_container_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What radmon sees in its container: the mounted example file plus compose's environment.
    A misspelt RADMON_ variable in compose.yaml would stop radmon at start; this catches it."""
    referenced = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text(encoding="utf-8")))
    # radmon reads every RADMON_* variable as a setting and stops on one it does not know, so a
    # secret exported under such a name in an operator's shell would break every radmon command.
    assert not {name for name in referenced if name.upper().startswith("RADMON_")}
    env = _compose()["services"]["radmon"]["environment"]
    monkeypatch.setenv("DB_PASSWORD", "s3cret")
    for name, value in env.items():
        monkeypatch.setenv(name, _interpolate(str(value)))

    settings = load_settings(EXAMPLE)

    assert settings.database.url == "postgresql://radmon:s3cret@timescaledb:5432/radmon"
    assert settings.mqtt.host == "mosquitto"
    assert settings.mqtt.password == "change-me"  # the documented local-trial default
    assert settings.web.host == "0.0.0.0"
    assert settings.web.port == 8080


# --- deploy/mosquitto -----------------------------------------------------------------------------


def _directives(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.append((key, value.strip()))
    return out


def _duration_days(value: str) -> float:
    number, unit = int(value[:-1]), value[-1]
    return number * {"h": 1 / 24, "d": 1, "w": 7, "m": 30, "y": 365}[unit]


def test_broker_config_does_not_keep_the_lossy_defaults() -> None:
    conf = dict(_directives(BROKER_CONF.read_text(encoding="utf-8")))

    assert conf["persistence"] == "true"
    assert conf["persistence_location"].startswith("/mosquitto/data")
    # Absent means the default 1000, beyond which QoS 1 messages are dropped silently.
    queued = int(conf["max_queued_messages"])
    assert queued == 0 or queued > 100_000
    # A byte bound, if any, must leave room for days of backlog (0 is no bound).
    queued_bytes = int(conf.get("max_queued_bytes", "0"))
    assert queued_bytes == 0 or queued_bytes >= 2**28
    assert int(conf["autosave_interval"]) <= 300
    assert conf.get("autosave_on_changes", "false") == "false"
    assert _duration_days(conf["persistent_client_expiration"]) >= 7
    assert conf["allow_anonymous"] == "false"
    assert conf["password_file"] == "/mosquitto/config/passwd"
    assert conf["acl_file"] == "/mosquitto/config/acl"
    assert conf["listener"].split()[0] == "1883"


def _acl_rules() -> dict[str | None, list[tuple[str, str]]]:
    """{username: [(access, topic)]}; key None holds the ``pattern`` rules for every user."""
    rules: dict[str | None, list[tuple[str, str]]] = {None: []}
    user: str | None = None
    for key, value in _directives(BROKER_ACL.read_text(encoding="utf-8")):
        if key == "user":
            user = value
            rules.setdefault(user, [])
        elif key == "topic":
            access, _, topic = value.partition(" ")
            rules[user].append((access, topic))
        elif key == "pattern":
            access, _, topic = value.partition(" ")
            rules[None].append((access, topic))
    return rules


def test_acl_lets_the_ingest_read_and_each_edge_write_only_its_stations() -> None:
    rules = _acl_rules()

    assert set(rules["radmon-central"]) == {
        ("read", "radmon/v1/+/dose"),
        ("read", "radmon/v1/+/status"),
        ("read", "radmon/v1/edge/+/status"),
    }
    edges = [user for user in rules if user not in (None, "radmon-central")]
    assert edges
    for user in edges:
        for access, topic in rules[user]:
            assert access == "write", (user, topic)
            own_status = topic == f"radmon/v1/edge/{user}/status"  # its will message
            assert own_status or re.fullmatch(r"radmon/v1/[^/+#]+/(dose|status)", topic), topic
        assert ("write", f"radmon/v1/edge/{user}/status") in rules[user]
    for access, topic in rules[None]:
        assert access == "write"
        assert topic in ("radmon/v1/%u/dose", "radmon/v1/%u/status")


# --- the broker itself ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _test_copy(tmp_path: Path, port: int, passwd: Path | None) -> Path:
    """deploy's mosquitto.conf with its container paths moved to tmp_path and a loopback port.
    Without *passwd*, anonymous clients are allowed and there is no ACL."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    replace = {
        "persistence_location": f"persistence_location {data}/",
        "listener": f"listener {port} 127.0.0.1",
        "allow_anonymous": "allow_anonymous false" if passwd else "allow_anonymous true",
        "password_file": f"password_file {passwd}" if passwd else "",
        "acl_file": f"acl_file {BROKER_ACL}" if passwd else "",
    }
    seen = set()
    lines = []
    for line in BROKER_CONF.read_text(encoding="utf-8").splitlines():
        key = line.split(" ")[0]
        if key in replace:
            seen.add(key)
            line = replace[key]
        lines.append(line)
    assert seen == set(replace), f"mosquitto.conf lacks {set(replace) - seen}"
    # As root, mosquitto would switch to user "mosquitto", who cannot write into tmp_path.
    lines.append(f"user {_username()}")
    path = tmp_path / "mosquitto.conf"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _username() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


class Broker:
    """A mosquitto process on a loopback port; restartable with the same configuration."""

    def __init__(self, conf: Path, port: int, log: Path) -> None:
        self.conf, self.port, self.log = conf, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(MOSQUITTO), "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"mosquitto exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"mosquitto did not listen on {self.port}:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file and exits
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Any]:
    brokers: list[Broker] = []

    def make(passwd: Path | None = None) -> Broker:
        port = _free_port()
        broker = Broker(_test_copy(tmp_path, port, passwd), port, tmp_path / "mosquitto.log")
        brokers.append(broker)
        broker.start()
        return broker

    yield make
    for broker in brokers:
        broker.stop()


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    length, header = len(body), bytearray([first])
    while True:
        digit, length = length % 128, length // 128
        header.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(header) + body


class Client:
    """The few MQTT 3.1.1 packets these tests need, over a plain socket (no client library)."""

    def __init__(
        self,
        port: int,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        clean: bool = True,
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        flags = (0x02 if clean else 0) | (0x80 if username else 0) | (0x40 if password else 0)
        body = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", 60) + _utf8(client_id)
        body += (_utf8(username) if username else b"") + (_utf8(password) if password else b"")
        self.sock.sendall(_packet(0x10, body))
        kind, reply = self._read()
        assert kind == 0x20
        self.session_present, self.return_code = bool(reply[0] & 1), reply[1]
        self._next_id = 1

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return data

    def _read(self) -> tuple[int, bytes]:
        first = self._exact(1)[0]
        length, shift = 0, 0
        while True:
            digit = self._exact(1)[0]
            length += (digit & 0x7F) << shift
            shift += 7
            if not digit & 0x80:
                break
        return first, self._exact(length)

    def _packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id

    def subscribe(self, *filters: str) -> list[int]:
        body = struct.pack("!H", self._packet_id())
        for topic_filter in filters:
            body += _utf8(topic_filter) + b"\x01"
        self.sock.sendall(_packet(0x82, body))
        kind, reply = self._read()
        assert kind == 0x90
        return list(reply[2:])

    def publish(self, topic: str, payload: bytes) -> None:
        """QoS 1; returns once the broker has acknowledged it (PUBACK)."""
        packet_id = self._packet_id()
        self.sock.sendall(_packet(0x32, _utf8(topic) + struct.pack("!H", packet_id) + payload))
        kind, reply = self._read()
        assert kind == 0x40 and struct.unpack("!H", reply)[0] == packet_id

    def receive(self, timeout: float) -> tuple[str, bytes] | None:
        """The next message (acknowledged), or None after *timeout* seconds of silence."""
        self.sock.settimeout(timeout)
        try:
            first, body = self._read()
        except TimeoutError:
            return None
        finally:
            self.sock.settimeout(5)
        assert first >> 4 == 3, f"expected PUBLISH, got packet type {first >> 4}"
        size = struct.unpack("!H", body[:2])[0]
        topic, rest = body[2 : 2 + size].decode(), body[2 + size :]
        if (first >> 1) & 3:
            self.sock.sendall(_packet(0x40, rest[:2]))
            rest = rest[2:]
        return topic, rest

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT: no will, session kept if not clean
        self.sock.close()


@needs_mosquitto
def test_broker_starts_with_the_deploy_config_and_accepts_clients(make_broker: Any) -> None:
    broker = make_broker()

    client = Client(broker.port, "radmon-test")
    assert client.return_code == 0
    client.close()


@needs_mosquitto
def test_broker_keeps_more_than_the_default_queue_across_a_restart(make_broker: Any) -> None:
    """The central ingest is down while the edges keep publishing, and the broker restarts in
    between: with Mosquitto's defaults it would find nothing (no persistence), or at most 1000
    readings (the default queue limit). With deploy's configuration it finds every one."""
    count = 1200
    broker = make_broker()
    ingest = Client(broker.port, "radmon-central", clean=False)
    assert ingest.subscribe("radmon/v1/+/dose") == [1]
    ingest.close()

    edge = Client(broker.port, "edge-halong")
    for i in range(count):
        edge.publish(f"radmon/v1/QN-HL-{i % 3:02d}/dose", str(i).encode())
    edge.close()
    broker.stop()
    broker.start()

    ingest = Client(broker.port, "radmon-central", clean=False)
    assert ingest.return_code == 0
    assert ingest.session_present
    received = []
    while (message := ingest.receive(timeout=2)) is not None:
        received.append(int(message[1]))
        if len(received) == count:
            break
    ingest.close()
    assert sorted(received) == list(range(count))


@pytest.fixture
def passwd(tmp_path: Path) -> Path:
    path = tmp_path / "passwd"
    users = {"radmon-central": "central-pw", "edge-halong": "edge-pw", "QN-UB-03": "probe-pw"}
    for i, (user, password) in enumerate(users.items()):
        create = ["-c"] if i == 0 else []
        subprocess.run(
            [str(MOSQUITTO_PASSWD), *create, "-b", str(path), user, password],
            check=True,
            capture_output=True,
        )
    return path


@needs_mosquitto_passwd
def test_broker_refuses_anonymous_and_wrong_passwords(make_broker: Any, passwd: Path) -> None:
    broker = make_broker(passwd)

    anonymous = Client(broker.port, "anon")
    wrong = Client(broker.port, "bad", username="edge-halong", password="nope")
    anonymous.close()
    wrong.close()
    assert anonymous.return_code != 0
    assert wrong.return_code != 0
    good = Client(broker.port, "edge-halong", username="edge-halong", password="edge-pw")
    assert good.return_code == 0
    good.close()


@needs_mosquitto_passwd
def test_broker_acl_delivers_only_what_each_edge_may_write(make_broker: Any, passwd: Path) -> None:
    broker = make_broker(passwd)
    ingest = Client(broker.port, "radmon-central", username="radmon-central", password="central-pw")
    # As the ingest subscribes with mqtt.shared_group set, and without.
    assert ingest.subscribe("$share/radmon/radmon/v1/+/dose", "radmon/v1/+/status") == [1, 1]

    sent = [
        ("edge-halong", "edge-pw", "radmon/v1/QN-MC-01/dose", False),  # another edge's station
        ("edge-halong", "edge-pw", "radmon/v1/QN-HL-01/dose", True),
        ("QN-UB-03", "probe-pw", "radmon/v1/QN-UB-04/dose", False),  # a probe as its neighbour
        ("QN-UB-03", "probe-pw", "radmon/v1/QN-UB-03/status", True),
        ("radmon-central", "central-pw", "radmon/v1/QN-HL-01/dose", False),  # ingest only reads
        ("edge-halong", "edge-pw", "radmon/v1/QN-HL-02/status", True),
    ]
    for n, (user, password, topic, _allowed) in enumerate(sent):
        client = Client(broker.port, f"pub-{n}", username=user, password=password)
        assert client.return_code == 0
        # A denied publish may end the connection instead of being acknowledged.
        with contextlib.suppress(ConnectionError):
            client.publish(topic, f"{n}".encode())
        client.close()

    expected = {(topic, str(n).encode()) for n, (*_, topic, ok) in enumerate(sent) if ok}
    received = set()
    while received != expected and (message := ingest.receive(timeout=2)) is not None:
        assert message in expected, f"delivered against the ACL: {message}"
        received.add(message)
    ingest.close()
    assert received == expected
