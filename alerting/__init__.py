"""Alarm lifecycle, routing and escalation, on-call rosters, the notification outbox, channels."""
