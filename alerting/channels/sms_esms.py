"""eSMS.vn (ViHAT): one SMS per request through ``SendMultipleMessage_V4_post_json``.

eSMS answers HTTP 200 with a ``CodeResult``; only "100" means accepted. Our idempotency key goes
out as ``RequestId``, which eSMS deduplicates: a retry after a lost answer gets "124"
(duplicate RequestId) instead of a second SMS, and we count that as delivered.

Account problems (wrong keys, unknown brandname, no balance, IP not whitelisted) are permanent:
retrying cannot help until an admin acts, and the admin must hear about it now.

Source for the request fields and codes: eSMS's own developer docs, GitHub repository
devesms/gitbook_esms_for_develop_v2_en, files esms-api/send-sms-api/
send-otp-customer-care-message.md (fields, answers 100/101/104/124/146) and
esms-api/table-of-error-codes.md (the full CodeResult table).
"""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from alerting.channels import register
from alerting.channels.base import (
    ChannelOptions,
    Delivered,
    Outgoing,
    PermanentError,
    TransientError,
)
from alerting.channels.httpclient import HttpChannel, json_object, msisdn, raise_for_status
from alerting.smstext import is_gsm7

ENDPOINT = "SendMultipleMessage_V4_post_json/"
ACCEPTED = "100"
DUPLICATE_REQUEST = "124"
# CodeResult -> what the admin should do; anything not listed here is treated as transient.
PERMANENT_CODES = {
    "99": "the phone number is blocked at eSMS",
    "101": "eSMS rejected ApiKey/SecretKey",
    "102": "eSMS account has no price list; contact eSMS",
    "103": "eSMS account balance too low; top up",
    "104": "eSMS brandname not registered for this account",
    "108": "eSMS says the phone number is not valid",
    "140": "this server's IP is not whitelisted at eSMS",
    "146": "eSMS customer-care template not registered for this text",
    "177": "eSMS brandname not registered on the recipient's network",
    "300": "eSMS request lacks a message type (check sms_type)",
}


class EsmsOptions(ChannelOptions):
    api_key: SecretStr
    secret_key: SecretStr
    brandname: str = ""  # required when sms_type is "2" (customer care)
    sms_type: str = "2"  # "2" customer care via brandname; "8" fixed number
    sandbox: bool = False  # eSMS validates and answers, but sends and charges nothing
    base_url: str = Field(default="https://rest.esms.vn/MainService.svc/json/", min_length=1)

    @model_validator(mode="after")
    def _brandname_for_customer_care(self) -> EsmsOptions:
        if self.sms_type == "2" and not self.brandname:
            raise ValueError("brandname is required when sms_type is 2")
        return self


@register("sms", "esms")
class EsmsChannel(HttpChannel):
    """SMS through eSMS.vn's REST API."""

    Options = EsmsOptions
    options: EsmsOptions

    async def send(self, message: Outgoing) -> Delivered:
        opts = self.options
        body = {
            "ApiKey": opts.api_key.get_secret_value(),
            "SecretKey": opts.secret_key.get_secret_value(),
            "Phone": msisdn(message.address),
            "Content": message.text,
            "SmsType": opts.sms_type,
            "IsUnicode": "0" if is_gsm7(message.text) else "1",
            "Sandbox": "1" if opts.sandbox else "0",
            "RequestId": message.key,
        }
        if opts.brandname:
            body["Brandname"] = opts.brandname
        url = opts.base_url.rstrip("/") + "/" + ENDPOINT
        response = await self.post(url, json=body)
        raise_for_status(response, "eSMS")
        return _outcome(json_object(response) or {})


def _outcome(answer: dict[str, object]) -> Delivered:
    code = str(answer.get("CodeResult", ""))
    if code == ACCEPTED:
        return Delivered(provider_id=_text(answer.get("SMSID")))
    if code == DUPLICATE_REQUEST:
        return Delivered(detail="eSMS already accepted this RequestId on an earlier attempt")
    said = _text(answer.get("ErrorMessage") or answer.get("error")) or "no error message"
    if code in PERMANENT_CODES:
        raise PermanentError(f"{PERMANENT_CODES[code]} (eSMS {code}: {said[:80]})")
    raise TransientError(f"eSMS answered CodeResult {code or 'missing'}: {said[:80]}")


def _text(value: object) -> str | None:
    return None if value in (None, "") else str(value)
