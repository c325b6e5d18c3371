"""Twilio Programmable Messaging: ``POST /2010-04-01/Accounts/{sid}/Messages.json``.

Form-encoded ``To``, ``From`` (or ``MessagingServiceSid``) and ``Body``, Basic auth with the
account SID and auth token; 201 carries the message ``sid``. Errors come as JSON
``{"code": 21211, "message": "...", "status": 400}``: the Twilio code decides where we know it
(an invalid or unreachable number is permanent, a full sender queue is transient), otherwise the
HTTP status does (429 and 5xx transient, other 4xx permanent).

No idempotency: the Messages API takes no idempotency key, so a retry after a lost 201 sends a
second SMS. Codes: https://www.twilio.com/docs/api/errors.
"""

from __future__ import annotations

import httpx
from pydantic import Field, SecretStr, model_validator

from alerting.channels import register
from alerting.channels.base import (
    ChannelOptions,
    Delivered,
    Outgoing,
    PermanentError,
    TransientError,
)
from alerting.channels.httpclient import HttpChannel, json_object, provider_id, raise_for_status

PERMANENT_CODES = {
    20003: "Twilio rejected account_sid/auth_token",
    20404: "Twilio does not know this account or resource (check account_sid)",
    21211: "Twilio says the 'To' number is not valid",
    21408: "Twilio account may not send to this region (enable it in Geo Permissions)",
    21606: "the 'From' number cannot send SMS",
    21608: "trial account: the 'To' number is not verified",
    21610: "the recipient has unsubscribed (replied STOP)",
    21612: "Twilio cannot route to the 'To' number",
    21614: "the 'To' number cannot receive SMS",
}
TRANSIENT_CODES = {
    20429: "Twilio rate limit",
    20500: "Twilio internal error",
    20503: "Twilio temporarily unavailable",
    21611: "the 'From' number's queue is full",
}


class TwilioOptions(ChannelOptions):
    account_sid: str = Field(min_length=1)
    auth_token: SecretStr
    from_number: str = ""  # E.164 sender; or messaging_service_sid
    messaging_service_sid: str = ""
    base_url: str = Field(default="https://api.twilio.com", min_length=1)

    @model_validator(mode="after")
    def _one_sender(self) -> TwilioOptions:
        if bool(self.from_number) == bool(self.messaging_service_sid):
            raise ValueError("set exactly one of from_number and messaging_service_sid")
        return self


@register("sms", "twilio")
class TwilioChannel(HttpChannel):
    """SMS through Twilio's REST API."""

    Options = TwilioOptions
    options: TwilioOptions

    def auth(self) -> httpx.Auth:
        return httpx.BasicAuth(self.options.account_sid, self.options.auth_token.get_secret_value())

    async def send(self, message: Outgoing) -> Delivered:
        opts = self.options
        form = {"To": message.address, "Body": message.text}
        if opts.messaging_service_sid:
            form["MessagingServiceSid"] = opts.messaging_service_sid
        else:
            form["From"] = opts.from_number
        url = f"{opts.base_url.rstrip('/')}/2010-04-01/Accounts/{opts.account_sid}/Messages.json"
        response = await self.post(url, data=form)
        if not response.is_success:
            _raise_for_code(json_object(response) or {})
        raise_for_status(response, "Twilio")
        return Delivered(provider_id=provider_id(response, "sid"))


def _raise_for_code(answer: dict) -> None:
    code = answer.get("code")
    said = str(answer.get("message") or "")[:80]
    if code in PERMANENT_CODES:
        raise PermanentError(f"{PERMANENT_CODES[code]} (Twilio {code}: {said})")
    if code in TRANSIENT_CODES:
        raise TransientError(f"{TRANSIENT_CODES[code]} (Twilio {code}: {said})")
