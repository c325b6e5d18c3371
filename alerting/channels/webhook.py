"""Webhook: POST the notification as JSON to a URL (chat bridges, ticketing, other systems).

The URL is the contact's address when it has one, else the channel's ``url``. The body is
``Outgoing.payload`` with ``text``, ``subject`` and ``key`` added when the payload lacks them.
Any 2xx answer means delivered.

Headers a receiver can rely on:

* ``Idempotency-Key: <key>`` -- the same on every retry of one notification; deduplicate on it.
* ``X-Radmon-Timestamp: <unix seconds>`` -- when this attempt was signed.
* ``X-Radmon-Signature: sha256=<hex>`` (only when ``secret`` is set) -- HMAC-SHA256 keyed with
  the secret (UTF-8) over the bytes ``<timestamp>.<raw body>``.

To verify: read the raw body before parsing it, compute
``hmac.new(secret, f"{timestamp}.".encode() + raw_body, "sha256").hexdigest()``, compare it to
the header with a constant-time comparison, and reject timestamps far from now (say, more than
five minutes) so a captured request cannot be replayed later. The timestamp changes on every
retry; the idempotency key does not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from pydantic import Field, SecretStr

from alerting.channels import register
from alerting.channels.base import ChannelOptions, Delivered, Outgoing, PermanentError
from alerting.channels.httpclient import HttpChannel, provider_id, raise_for_status


class WebhookOptions(ChannelOptions):
    url: str = ""  # used when the contact's address is empty
    secret: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Radmon-Signature`` value for *body* sent at *timestamp*."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@register("webhook")
class WebhookChannel(HttpChannel):
    """Notifications as signed JSON POSTs."""

    Options = WebhookOptions
    options: WebhookOptions

    async def send(self, message: Outgoing) -> Delivered:
        url = message.address or self.options.url
        if not url:
            raise PermanentError("webhook has no URL: set the channel's url or the address")
        document = {"text": message.text, "subject": message.subject, "key": message.key}
        document.update(message.payload)
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str)
        body = text.encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {
            **self.options.headers,
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": message.key,
            "X-Radmon-Timestamp": timestamp,
        }
        if self.options.secret is not None:
            secret = self.options.secret.get_secret_value()
            headers["X-Radmon-Signature"] = signature(secret, timestamp, body)
        response = await self.post(url, content=body, headers=headers)
        raise_for_status(response)
        return Delivered(provider_id=provider_id(response, "id", "message_id"))
