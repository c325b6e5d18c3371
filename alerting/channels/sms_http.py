"""A generic HTTP SMS gateway: the simplest contract a local gateway can implement.

Contract (kept stable; the gateway double and site gateways rely on it)::

    POST <url>
    Content-Type: application/json
    {"to": "+84901234567", "text": "...", "id": "<idempotency key>"}

Any 2xx answer means accepted. ``id`` is the same on every retry of one notification, so a
gateway that remembers ids sends each SMS once even when our retry follows a lost answer.
An answer ``{"id": ...}`` or ``{"message_id": ...}`` is kept as the provider's message id.
"""

from __future__ import annotations

from pydantic import Field

from alerting.channels import register
from alerting.channels.base import ChannelOptions, Delivered, Outgoing
from alerting.channels.httpclient import HttpChannel, provider_id, raise_for_status


class SmsHttpOptions(ChannelOptions):
    url: str = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. an API key header


@register("sms", "http")
class SmsHttpChannel(HttpChannel):
    """SMS through any gateway that speaks the contract above."""

    Options = SmsHttpOptions
    options: SmsHttpOptions

    async def send(self, message: Outgoing) -> Delivered:
        body = {"to": message.address, "text": message.text, "id": message.key}
        response = await self.post(self.options.url, json=body, headers=self.options.headers)
        raise_for_status(response)
        return Delivered(provider_id=provider_id(response, "id", "message_id"))
