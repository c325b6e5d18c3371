"""SpeedSMS.vn: ``POST /index.php/sms/send`` with the access token as Basic-auth username.

Answers are JSON: ``{"status": "success", "code": "00", "data": {"tranId": ...}}`` or
``{"status": "error", "code": "<code>", "message": "..."}``; SpeedSMS also rate-limits to
60 requests a minute and then answers 429.

No idempotency: SpeedSMS's send API documents no request id or deduplication key, so the
idempotency key cannot travel with the request. Consequence: when an answer is lost after
SpeedSMS accepted the message (timeout, reset), our retry sends the SMS a second time. For an
alarm a duplicate is the lesser evil than silence, but prefer a provider with a request id
(eSMS, or the http contract) where duplicates matter.

Source for the error codes and answers: SpeedSMS API page, https://speedsms.vn/sms-api/
(codes 007, 008, 009, 101, 105, 110, 113, 300, 500; the 429 rate-limit answer).
"""

from __future__ import annotations

import httpx
from pydantic import Field, SecretStr

from alerting.channels import register
from alerting.channels.base import (
    ChannelOptions,
    Delivered,
    Outgoing,
    PermanentError,
    TransientError,
)
from alerting.channels.httpclient import HttpChannel, json_object, msisdn, raise_for_status

# code -> what the admin should do; anything not listed here is treated as transient.
PERMANENT_CODES = {
    "007": "SpeedSMS has locked this server's IP",
    "008": "SpeedSMS account is blocked",
    "009": "SpeedSMS account may not use the API",
    "101": "SpeedSMS says parameters are invalid or missing (check sms_type and sender)",
    "105": "SpeedSMS says the phone number is not valid",
    "110": "SpeedSMS does not support the text's encoding",
    "113": "SpeedSMS says the text is too long",
    "300": "SpeedSMS account balance too low; top up",
}


class SpeedSmsOptions(ChannelOptions):
    access_token: SecretStr
    sms_type: int = 2  # 2 random number, 3 brandname, 4 default brandname, 5 Android app
    sender: str = ""  # brandname or device id, for the types that need one
    url: str = Field(default="https://api.speedsms.vn/index.php/sms/send", min_length=1)


@register("sms", "speedsms")
class SpeedSmsChannel(HttpChannel):
    """SMS through SpeedSMS.vn's REST API."""

    Options = SpeedSmsOptions
    options: SpeedSmsOptions

    def auth(self) -> httpx.Auth:
        return httpx.BasicAuth(self.options.access_token.get_secret_value(), "x")

    async def send(self, message: Outgoing) -> Delivered:
        body = {
            "to": [msisdn(message.address)],
            "content": message.text,
            "sms_type": self.options.sms_type,
            "sender": self.options.sender,
        }
        response = await self.post(self.options.url, json=body)
        raise_for_status(response, "SpeedSMS")
        return _outcome(json_object(response) or {})


def _outcome(answer: dict) -> Delivered:
    data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
    if answer.get("status") == "success":
        if data.get("invalidPhone"):
            raise PermanentError("SpeedSMS says the phone number is not valid")
        tran_id = data.get("tranId")
        return Delivered(provider_id=None if tran_id is None else str(tran_id))
    code = str(answer.get("code", ""))
    said = str(answer.get("message") or "no error message")[:80]
    if answer.get("status") == 429:  # the rate-limit answer, if it arrives with HTTP 200
        raise TransientError(f"SpeedSMS rate limit: {said}")
    if code in PERMANENT_CODES:
        raise PermanentError(f"{PERMANENT_CODES[code]} (SpeedSMS {code}: {said})")
    raise TransientError(f"SpeedSMS answered code {code or 'missing'}: {said}")
