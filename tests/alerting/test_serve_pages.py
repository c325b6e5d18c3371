"""``radmon serve`` as a real process: a breaching reading published on MQTT pages the on-call
contact through the SMS gateway, once, and a restart of serve does not page again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.publish as publish
import pytest
import yaml

from alerting.gateway_double import GatewayDouble
from radmon.config import load_settings
from radmon.models import Station
from radmon.store import Store
from tests.broker import Broker, free_port

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def _serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "radmon", "serve", "--config", str(config)],
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("RADMON_")},
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_serve_pages_the_on_call_contact_for_a_breach(
    pg_url: str, broker: Broker, tmp_path: Path
) -> None:
    gateway = GatewayDouble().start()
    config = tmp_path / "radmon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"url": pg_url},
                "mqtt": {"host": "127.0.0.1", "port": broker.port, "client_id": "t-serve"},
                "web": {"port": free_port()},
                "alerting": {
                    "channels": [
                        {
                            "name": "sms-gateway",
                            "type": "sms",
                            "provider": "http",
                            "url": gateway.send_url,
                        }
                    ],
                    "contacts": [{"name": "Duty officer", "phone": "+84901234567"}],
                    "routes": [
                        {
                            "severities": ["alert", "emergency"],
                            "contacts": ["Duty officer"],
                            "channels": ["sms-gateway"],
                        }
                    ],
                },
            }
        )
    )
    settings = load_settings(config)
    store = Store.open(settings)
    store.upgrade()
    store.upsert_stations([Station(station_id="QN01", name="Hạ Long", lat=20.95, lon=107.07)])
    store.close()
    log = tmp_path / "serve.log"
    serve = _serve(config, log)
    try:
        deadline = time.monotonic() + 30
        while b"Uvicorn running" not in log.read_bytes():
            assert serve.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        payload = {"time": time.time(), "dose_rate": 150.0, "unit": "uSv/h"}
        sent_at = time.time()
        publish.single(
            "radmon/v1/QN01/dose",
            json.dumps(payload),
            qos=1,
            hostname="127.0.0.1",
            port=broker.port,
        )
        assert gateway.wait_for(1, timeout=20), log.read_text()
        [sms] = gateway.delivered
        assert sms["to"] == "+84901234567" and "QN01" in sms["text"] and "KHẨN CẤP" in sms["text"]
        assert sms["received_at"] - sent_at < 5.0
        _stop(serve)
        serve = _serve(config, log)  # a restart replays and re-plans: nobody is paged twice
        deadline = time.monotonic() + 30
        while log.read_bytes().count(b"Uvicorn running") < 2:
            assert serve.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        time.sleep(3)
        assert len(gateway.delivered) == 1 and gateway.requests == 1
    finally:
        _stop(serve)
        gateway.stop()
