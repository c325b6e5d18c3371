"""Alerting: the alarm lifecycle's notifications, routing, grouping, escalation, on-call
rosters, the outbox and its channels (SMS, e-mail, webhook)."""

from alerting.service import AlertingService, build_channels

__all__ = ["AlertingService", "build_channels"]
