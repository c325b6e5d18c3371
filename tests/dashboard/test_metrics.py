"""``/metrics``: the ingest's counters as a scraper on the same machine reads them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from dashboard import create_app
from ingest.mqtt import MqttIngest
from radmon.store import Store
from radmon.users import add_user


def _scrape(store: Store, settings, ingest: MqttIngest) -> dict[str, str]:
    app = create_app(store, settings, ingest=ingest)
    text = TestClient(app, client=("127.0.0.1", 40000)).get("/metrics").text
    return dict(line.split(" ", 1) for line in text.splitlines() if not line.startswith("#"))


def test_counters_keep_every_digit(seeded: Store, settings) -> None:
    # A benchmark waited forever for 1,498,261 readings that /metrics called 1.49826e+06.
    ingest = MqttIngest(seeded, settings)
    ingest.counters.readings_stored = 1_498_261
    ingest.counters.messages = 123_456_789_012
    ingest.counters.connected = True
    samples = _scrape(seeded, settings, ingest)
    assert samples["radmon_mqtt_readings_stored_total"] == "1498261"
    assert samples["radmon_mqtt_messages_total"] == "123456789012"
    assert samples["radmon_mqtt_connected"] == "1"
    assert samples["radmon_mqtt_rejected_total"] == "0"

    ingest.counters.readings_stored += 1
    assert _scrape(seeded, settings, ingest)["radmon_mqtt_readings_stored_total"] == "1498262"


def test_a_remote_scraper_reads_with_credentials_and_not_without(seeded: Store, settings) -> None:
    """docs/ingest.md: anyone but the machine itself needs read access, like the API."""
    add_user(seeded, "prometheus", "viewer", "scraper password 1")
    remote = TestClient(create_app(seeded, settings), client=("10.1.2.3", 40000))
    assert remote.get("/metrics").status_code == 401
    assert remote.get("/metrics", auth=("prometheus", "wrong password 1")).status_code == 401
    answer = remote.get("/metrics", auth=("prometheus", "scraper password 1"))
    assert answer.status_code == 200 and "radmon_dead_letters" in answer.text
