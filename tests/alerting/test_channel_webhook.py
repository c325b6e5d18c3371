"""The webhook channel against the gateway double's /webhook route: body, headers, signature."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from alerting.channels import Channel, Delivered, Outgoing, PermanentError, TransientError, build
from alerting.channels.webhook import signature
from alerting.gateway_double import GatewayDouble

SECRET = "hook-secret-ü"
TEXT = "Cảnh báo: trạm QN-01 vượt ngưỡng"


@pytest.fixture
def double() -> Iterator[GatewayDouble]:
    with GatewayDouble() as gateway:
        yield gateway


def webhook(**options: Any) -> Channel:
    return build("hook", "webhook", None, options, "alerting.channels[2]")


def outgoing(address: str, key: str = "alarm-9:ops", **extra: Any) -> Outgoing:
    fields = {"subject": "QN-01", "payload": {"alarm_id": 9, "station": "QN-01"}} | extra
    return Outgoing(key=key, channel="hook", address=address, text=TEXT, **fields)


def send(channel: Channel, *messages: Outgoing) -> list[Delivered | Exception]:
    async def main() -> list[Delivered | Exception]:
        outcomes: list[Delivered | Exception] = []
        for message in messages:
            try:
                outcomes.append(await channel.send(message))
            except (TransientError, PermanentError) as exc:
                outcomes.append(exc)
        await channel.aclose()
        return outcomes

    return asyncio.run(main())


def verify(secret: str, headers: dict[str, str], raw: bytes, max_age_s: int = 300) -> bool:
    """What a receiver does, written from the module docstring alone."""
    timestamp = headers["x-radmon-timestamp"]
    if abs(time.time() - int(timestamp)) > max_age_s:
        return False
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), headers["x-radmon-signature"])


def test_a_receiver_can_verify_the_signature(double: GatewayDouble):
    [result] = send(webhook(secret=SECRET), outgoing(double.webhook_url))
    assert isinstance(result, Delivered)
    [call] = double.calls
    assert verify(SECRET, call["headers"], call["raw"])
    assert not verify("another secret", call["headers"], call["raw"])
    assert not verify(SECRET, call["headers"], call["raw"].replace(b"QN-01", b"QN-02"))
    stale = call["headers"] | {"x-radmon-timestamp": str(int(time.time()) - 3600)}
    assert not verify(SECRET, stale, call["raw"])


def test_signature_helper_matches_the_documented_scheme():
    expected = hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert signature("k", "1700000000", b"{}") == "sha256=" + expected


def test_headers_and_body(double: GatewayDouble):
    channel = webhook(headers={"Authorization": "Bearer t-1"})
    send(channel, outgoing(double.webhook_url))
    [call] = double.calls
    headers = call["headers"]
    assert headers["idempotency-key"] == "alarm-9:ops"
    assert abs(int(headers["x-radmon-timestamp"]) - time.time()) < 5
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["authorization"] == "Bearer t-1"
    assert "x-radmon-signature" not in headers  # no secret, no signature
    assert json.loads(call["raw"]) == {
        "alarm_id": 9,
        "station": "QN-01",
        "text": TEXT,
        "subject": "QN-01",
        "key": "alarm-9:ops",
    }
    assert TEXT.encode("utf-8") in call["raw"]  # UTF-8 as is, not \\u escapes


def test_payload_fields_win_over_the_defaults(double: GatewayDouble):
    payload = {"text": "payload text", "key": "their-key"}
    send(webhook(), outgoing(double.webhook_url, payload=payload))
    body = double.calls[0]["body"]
    assert body["text"] == "payload text" and body["key"] == "their-key"
    assert body["subject"] == "QN-01"


def test_the_address_overrides_the_configured_url(double: GatewayDouble):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    results = send(webhook(url=dead, timeout_s=2), outgoing(double.webhook_url), outgoing(""))
    assert isinstance(results[0], Delivered)
    assert isinstance(results[1], TransientError) and "refused" in str(results[1])
    assert len(double.delivered) == 1


def test_no_url_at_all_is_permanent():
    [result] = send(webhook(), outgoing(""))
    assert isinstance(result, PermanentError) and "URL" in str(result)


def test_a_retry_keeps_the_key_and_is_signed_afresh(double: GatewayDouble):
    double.fail(503)
    channel = webhook(secret=SECRET)
    first, retry = send(channel, outgoing(double.webhook_url), outgoing(double.webhook_url))
    assert isinstance(first, TransientError) and "503" in str(first)
    assert isinstance(retry, Delivered)
    calls = double.calls
    assert [c["headers"]["idempotency-key"] for c in calls] == ["alarm-9:ops"] * 2
    assert all(verify(SECRET, c["headers"], c["raw"]) for c in calls)


def test_a_repeated_key_reaches_the_receiver_once(double: GatewayDouble):
    results = send(webhook(), outgoing(double.webhook_url), outgoing(double.webhook_url))
    assert all(isinstance(r, Delivered) for r in results)
    assert len(double.delivered) == 1 and double.duplicates == 1


@pytest.mark.parametrize(("status", "error"), [(410, PermanentError), (502, TransientError)])
def test_status_classification(double: GatewayDouble, status: int, error: type[Exception]):
    double.fail(status)
    [result] = send(webhook(secret=SECRET), outgoing(double.webhook_url))
    assert type(result) is error and str(status) in str(result)
    assert SECRET not in str(result)


def test_a_hanging_receiver_is_cut_off(double: GatewayDouble):
    double.hang(5)
    started = time.monotonic()
    [result] = send(webhook(timeout_s=0.3), outgoing(double.webhook_url))
    assert isinstance(result, TransientError)
    assert time.monotonic() - started < 1.5
