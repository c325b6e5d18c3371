"""Alerting for ``radmon demo``: the whole path, ending at a local gateway double.

Nothing leaves the machine: the demo's SMS channel posts to :class:`GatewayDouble` on
loopback, which keeps each message in ``sms.jsonl`` under the demo's data directory and in
the outbox (``radmon notifications list``, ``/api/v1/notifications``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from alerting.gateway_double import GatewayDouble
from radmon.config import Settings
from radmon.config_alerting import AlertingSettings

log = logging.getLogger(__name__)
DEMO_PHONE = "+84900000000"


def demo_alerting(settings: Settings, data_dir: Path) -> GatewayDouble | None:
    """Start the gateway double and point a demo route at it, unless the configuration
    given to the demo sets up alerting itself; returns the double (to stop it) or None."""
    if settings.alerting.channels:
        return None
    gateway = GatewayDouble(log_path=data_dir / "sms.jsonl").start()
    settings.alerting = AlertingSettings.model_validate(
        {
            "dashboard_url": f"http://{settings.web.host}:{settings.web.port}",
            "channels": [
                {"name": "demo-sms", "type": "sms", "provider": "http", "url": gateway.send_url}
            ],
            "contacts": [{"name": "Trực ban (demo)", "phone": DEMO_PHONE}],
            # warnings too: the simulated province's sources should be seen paging
            "routes": [
                {
                    "severities": ["warning", "alert", "emergency"],
                    "categories": ["radiological"],
                    "contacts": ["Trực ban (demo)"],
                }
            ],
        }
    )
    log.info(
        "demo alerting: SMS go to a local gateway double at %s, kept in %s",
        gateway.send_url,
        gateway.log_path,
    )
    return gateway
