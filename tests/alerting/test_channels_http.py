"""The HTTP SMS providers against the gateway double on loopback: outcomes and classification."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from alerting.channels import (
    REGISTRY,
    Channel,
    Delivered,
    Outgoing,
    PermanentError,
    TransientError,
    build,
)
from alerting.gateway_double import GatewayDouble
from radmon.errors import InputError

PHONE = "+84901234567"
ASCII_TEXT = "RADMON: QN-01 0.92 uSv/h > 0.50. OK 17 de xac nhan"
VIET_TEXT = "Cảnh báo: trạm QN-01 đo 0,92 µSv/h, vượt ngưỡng 0,50"
SECRETS = ("esms-api-key", "esms-secret", "speed-token", "twilio-auth-token")


def esms_options(base: str) -> dict[str, Any]:
    return {
        "api_key": "esms-api-key",
        "secret_key": "esms-secret",
        "brandname": "RADMON",
        "base_url": base + "/esms/MainService.svc/json/",
    }


def twilio_options(base: str) -> dict[str, Any]:
    return {
        "account_sid": "AC0123",
        "auth_token": "twilio-auth-token",
        "from_number": "+15005550006",
        "base_url": base + "/twilio",
    }


# provider -> options for a gateway (or dead port) at base URL
PROVIDERS: dict[str, Callable[[str], dict[str, Any]]] = {
    "http": lambda base: {"url": base + "/send"},
    "esms": esms_options,
    "speedsms": lambda base: {
        "access_token": "speed-token",
        "url": base + "/speedsms/index.php/sms/send",
    },
    "twilio": twilio_options,
}
ALL = pytest.mark.parametrize("provider", list(PROVIDERS))


@pytest.fixture
def double() -> Iterator[GatewayDouble]:
    with GatewayDouble() as gateway:
        yield gateway


def make(provider: str, base: str, **extra: Any) -> Channel:
    options = PROVIDERS[provider](base) | extra
    return build("sms-test", "sms", provider, options, "alerting.channels[0]")


def outgoing(key: str = "n-1", text: str = ASCII_TEXT, address: str = PHONE) -> Outgoing:
    return Outgoing(key=key, channel="sms-test", address=address, text=text)


def send(channel: Channel, *messages: Outgoing) -> list[Delivered | Exception]:
    """Send each message in turn on one started channel; outcomes (results or errors)."""

    async def main() -> list[Delivered | Exception]:
        await channel.start()
        outcomes: list[Delivered | Exception] = []
        try:
            for message in messages:
                try:
                    outcomes.append(await channel.send(message))
                except (TransientError, PermanentError) as exc:
                    outcomes.append(exc)
        finally:
            await channel.aclose()
        return outcomes

    return asyncio.run(main())


def send_one(channel: Channel, message: Outgoing | None = None) -> Delivered | Exception:
    return send(channel, message or outgoing())[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_clean_reason(exc: Exception) -> None:
    reason = str(exc)
    assert reason and len(reason) < 200
    assert not any(secret in reason for secret in SECRETS), reason


# -- all providers ------------------------------------------------------------------------------


def test_every_provider_is_registered():
    for key in [("sms", "http"), ("sms", "esms"), ("sms", "speedsms"), ("sms", "twilio")]:
        assert key in REGISTRY
    assert ("webhook", None) in REGISTRY and ("email", None) in REGISTRY


@ALL
def test_success_reaches_the_phone_once(double: GatewayDouble, provider: str):
    result = send_one(make(provider, double.url))
    assert isinstance(result, Delivered)
    assert result.provider_id
    [got] = double.delivered
    assert got["provider"] == provider
    assert got["to"].removeprefix("+") == PHONE.removeprefix("+")
    assert got["text"] == ASCII_TEXT
    assert got["received_at"] == pytest.approx(time.time(), abs=5)


@ALL
@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_server_errors_and_throttling_are_transient(
    double: GatewayDouble, provider: str, status: int
):
    double.fail(status)
    result = send_one(make(provider, double.url))
    assert isinstance(result, TransientError)
    assert str(status) in str(result)
    assert_clean_reason(result)
    assert double.delivered == []


@ALL
@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_are_permanent(double: GatewayDouble, provider: str, status: int):
    double.fail(status, body={"error": "nope"})
    result = send_one(make(provider, double.url))
    assert isinstance(result, PermanentError)
    assert str(status) in str(result) and "nope" in str(result)
    assert_clean_reason(result)


@ALL
def test_a_hanging_gateway_is_cut_off_at_timeout(double: GatewayDouble, provider: str):
    double.hang(5)
    started = time.monotonic()
    result = send_one(make(provider, double.url, timeout_s=0.3))
    elapsed = time.monotonic() - started
    assert isinstance(result, TransientError)
    assert "0.3 s" in str(result)
    assert elapsed < 1.5


@ALL
def test_connection_refused_is_transient(provider: str):
    result = send_one(make(provider, f"http://127.0.0.1:{free_port()}", timeout_s=2))
    assert isinstance(result, TransientError)
    assert "cannot connect to 127.0.0.1" in str(result) and "refused" in str(result)
    assert_clean_reason(result)


@ALL
def test_connection_reset_is_transient(double: GatewayDouble, provider: str):
    double.reset()
    result = send_one(make(provider, double.url))
    assert isinstance(result, TransientError)
    assert "connection to 127.0.0.1" in str(result) and "lost" in str(result)
    assert double.requests == 1 and double.delivered == []


@ALL
def test_the_channel_recovers_after_faults(double: GatewayDouble, provider: str):
    double.fail(503, times=2)
    outcomes = send(make(provider, double.url), *(outgoing(key="n-1", text="a") for _ in "abc"))
    assert [type(o) for o in outcomes] == [TransientError, TransientError, Delivered]
    assert len(double.delivered) == 1 and double.requests == 3


def test_the_whole_request_is_bounded_even_when_bytes_trickle():
    """httpx's timeouts are per read; a gateway sending a byte every 50 ms must still be cut."""

    async def main() -> tuple[Delivered | Exception, float]:
        async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n")
            for _ in range(200):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.05)
            writer.close()

        server = await asyncio.start_server(trickle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        channel = make("http", f"http://127.0.0.1:{port}", timeout_s=0.5)
        started = time.monotonic()
        try:
            result: Delivered | Exception = await channel.send(outgoing())
        except TransientError as exc:
            result = exc
        elapsed = time.monotonic() - started
        await channel.aclose()
        server.close()
        return result, elapsed

    result, elapsed = asyncio.run(main())
    assert isinstance(result, TransientError)
    assert elapsed < 1.5


# -- idempotency --------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["http", "esms"])
def test_a_retry_after_a_lost_answer_never_reaches_the_phone_twice(
    double: GatewayDouble, provider: str
):
    """The gateway accepts the first attempt after we gave up; the retry carries the same key."""
    double.hang(0.6)
    channel = make(provider, double.url, timeout_s=0.2)
    first = send_one(channel)
    assert isinstance(first, TransientError)
    assert double.wait_for(1, timeout=3)  # the slow gateway did accept it
    retry = send_one(channel, outgoing())
    assert isinstance(retry, Delivered)
    assert len(double.delivered) == 1 and double.duplicates == 1
    key_field = {"http": "id", "esms": "RequestId"}[provider]
    keys = [call["body"][key_field] for call in double.calls]
    assert keys == ["n-1", "n-1"]


def test_speedsms_has_no_key_so_a_retry_after_a_lost_answer_sends_twice(double: GatewayDouble):
    """The limitation documented in sms_speedsms: nothing lets the provider deduplicate."""
    double.hang(0.6)
    channel = make("speedsms", double.url, timeout_s=0.2)
    assert isinstance(send_one(channel), TransientError)
    assert double.wait_for(1, timeout=3)
    assert isinstance(send_one(channel), Delivered)
    assert len(double.delivered) == 2 and double.duplicates == 0


# -- http contract ------------------------------------------------------------------------------


def test_http_posts_the_contract_with_extra_headers(double: GatewayDouble):
    channel = make("http", double.url, headers={"X-Api-Key": "k-123"})
    result = send_one(channel, outgoing(key="alarm-7:contact-2", text=VIET_TEXT))
    assert result == Delivered(provider_id="alarm-7:contact-2")  # the double echoes the id
    [call] = double.calls
    assert call["path"] == "/send"
    assert call["body"] == {"to": PHONE, "text": VIET_TEXT, "id": "alarm-7:contact-2"}
    assert call["headers"]["x-api-key"] == "k-123"
    assert call["headers"]["content-type"] == "application/json"


def test_http_takes_message_id_and_tolerates_an_empty_answer(double: GatewayDouble):
    double.respond(202, {"message_id": 991})
    double.respond(200, {})
    outcomes = send(make("http", double.url), outgoing(key="a"), outgoing(key="b"))
    assert outcomes == [Delivered(provider_id="991"), Delivered(provider_id=None)]


def test_http_needs_a_url():
    with pytest.raises(InputError, match=r"alerting.channels\[0\].url"):
        build("s", "sms", "http", {}, "alerting.channels[0]")


# -- eSMS ---------------------------------------------------------------------------------------


def test_esms_request_fields(double: GatewayDouble):
    channel = make("esms", double.url, sandbox=True)
    results = send(channel, outgoing(key="k-ascii"), outgoing(key="k-viet", text=VIET_TEXT))
    assert all(isinstance(r, Delivered) and r.provider_id for r in results)
    ascii_call, viet_call = (c["body"] for c in double.calls)
    assert ascii_call == {
        "ApiKey": "esms-api-key",
        "SecretKey": "esms-secret",
        "Phone": "84901234567",
        "Content": ASCII_TEXT,
        "SmsType": "2",
        "Brandname": "RADMON",
        "IsUnicode": "0",
        "Sandbox": "1",
        "RequestId": "k-ascii",
    }
    assert viet_call["IsUnicode"] == "1" and viet_call["Content"] == VIET_TEXT
    assert double.calls[0]["path"].endswith("/SendMultipleMessage_V4_post_json/")


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("101", "ApiKey/SecretKey"),
        ("103", "balance"),
        ("104", "brandname"),
        ("108", "phone number"),
        ("140", "whitelisted"),
        ("99", "blocked"),
    ],
)
def test_esms_account_and_number_codes_are_permanent(double: GatewayDouble, code, words):
    double.respond(200, {"CodeResult": code, "CountRegenerate": 0, "ErrorMessage": "x"})
    result = send_one(make("esms", double.url))
    assert isinstance(result, PermanentError)
    assert words in str(result) and f"eSMS {code}" in str(result)
    assert_clean_reason(result)


@pytest.mark.parametrize("answer", [{"CodeResult": "777"}, {"error": "Invalid request"}, {}])
def test_esms_unknown_answers_are_transient(double: GatewayDouble, answer: dict):
    double.respond(200, answer)
    assert isinstance(send_one(make("esms", double.url)), TransientError)


def test_esms_duplicate_request_id_counts_as_delivered(double: GatewayDouble):
    double.respond(200, {"CodeResult": "124", "ErrorMessage": "Request exist 1"})
    result = send_one(make("esms", double.url))
    assert isinstance(result, Delivered) and "RequestId" in result.detail


def test_esms_customer_care_needs_a_brandname():
    options = esms_options("http://127.0.0.1:1") | {"brandname": ""}
    with pytest.raises(InputError, match="brandname"):
        build("s", "sms", "esms", options, "alerting.channels[0]")
    options["sms_type"] = "8"
    assert build("s", "sms", "esms", options, "alerting.channels[0]")


# -- SpeedSMS -----------------------------------------------------------------------------------


def test_speedsms_request_and_basic_auth(double: GatewayDouble):
    result = send_one(make("speedsms", double.url, sms_type=3, sender="RADMON"))
    assert isinstance(result, Delivered) and result.provider_id == "1"
    [call] = double.calls
    assert call["body"] == {
        "to": ["84901234567"],
        "content": ASCII_TEXT,
        "sms_type": 3,
        "sender": "RADMON",
    }
    scheme, _, token = call["headers"]["authorization"].partition(" ")
    assert scheme == "Basic" and base64.b64decode(token) == b"speed-token:x"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("300", PermanentError),
        ("105", PermanentError),
        ("007", PermanentError),
        ("008", PermanentError),
        ("113", PermanentError),
        ("500", TransientError),
        ("042", TransientError),
    ],
)
def test_speedsms_codes(double: GatewayDouble, code: str, error: type[Exception]):
    double.respond(200, {"status": "error", "code": code, "message": "m"})
    result = send_one(make("speedsms", double.url))
    assert type(result) is error
    assert code in str(result)


def test_speedsms_rejected_number_in_a_success_answer_is_permanent(double: GatewayDouble):
    data = {"tranId": 5, "totalSMS": 0, "totalPrice": 0, "invalidPhone": ["84901234567"]}
    double.respond(200, {"status": "success", "code": "00", "data": data})
    assert isinstance(send_one(make("speedsms", double.url)), PermanentError)


def test_speedsms_rate_limit_answer_is_transient(double: GatewayDouble):
    body = {"name": "Too Many Requests", "message": "Rate limit exceeded.", "code": 0}
    double.respond(200, body | {"status": 429})
    assert isinstance(send_one(make("speedsms", double.url)), TransientError)


# -- Twilio -------------------------------------------------------------------------------------


def test_twilio_form_auth_and_sid(double: GatewayDouble):
    result = send_one(make("twilio", double.url), outgoing(text=VIET_TEXT))
    assert isinstance(result, Delivered) and result.provider_id.startswith("SM")
    [call] = double.calls
    assert call["path"] == "/twilio/2010-04-01/Accounts/AC0123/Messages.json"
    assert call["body"] == {"To": PHONE, "From": "+15005550006", "Body": VIET_TEXT}
    assert call["headers"]["content-type"] == "application/x-www-form-urlencoded"
    token = call["headers"]["authorization"].partition(" ")[2]
    assert base64.b64decode(token) == b"AC0123:twilio-auth-token"


def test_twilio_messaging_service(double: GatewayDouble):
    options = {"from_number": "", "messaging_service_sid": "MG42"}
    assert isinstance(send_one(make("twilio", double.url, **options)), Delivered)
    assert double.calls[0]["body"]["MessagingServiceSid"] == "MG42"
    assert "From" not in double.calls[0]["body"]


def test_twilio_invalid_number_is_permanent(double: GatewayDouble):
    result = send_one(make("twilio", double.url), outgoing(address="0901234567"))
    assert isinstance(result, PermanentError)
    assert "21211" in str(result) and "not valid" in str(result)


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, 21614, PermanentError),
        (400, 21610, PermanentError),
        (401, 20003, PermanentError),
        (400, 21611, TransientError),  # the code wins over the 4xx status
        (429, 20429, TransientError),
        (503, 20503, TransientError),
        (400, 12345, PermanentError),  # unknown code: the status decides
        (500, 12345, TransientError),
    ],
)
def test_twilio_codes(double: GatewayDouble, status: int, code: int, error: type[Exception]):
    double.respond(status, {"code": code, "message": "m", "status": status})
    result = send_one(make("twilio", double.url))
    assert type(result) is error
    assert str(code) in str(result) or str(status) in str(result)
    assert_clean_reason(result)


def test_twilio_needs_exactly_one_sender():
    options = twilio_options("http://127.0.0.1:1") | {"from_number": ""}
    with pytest.raises(InputError, match="exactly one"):
        build("s", "sms", "twilio", options, "alerting.channels[0]")


# -- the gateway double itself ------------------------------------------------------------------


def test_double_wait_for_times_out_and_logs_json_lines(tmp_path):
    log = tmp_path / "sms.jsonl"
    with GatewayDouble(log_path=log) as double:
        assert double.wait_for(1, timeout=0.05) is False
        assert isinstance(send_one(make("http", double.url)), Delivered)
        assert double.wait_for(1, timeout=1) is True
    [line] = log.read_text(encoding="utf-8").splitlines()
    assert json.loads(line) | {"received_at": 0} == {
        "provider": "http",
        "to": PHONE,
        "text": ASCII_TEXT,
        "id": "n-1",
        "received_at": 0,
    }


def test_double_recover_clears_faults_and_rejects_bad_requests(double: GatewayDouble):
    double.fail(503, times=5)
    double.recover()
    channel = make("http", double.url)
    assert isinstance(send_one(channel), Delivered)
    bad = Outgoing(key="", channel="c", address=PHONE, text="x")
    assert isinstance(send_one(channel, bad), PermanentError)  # the double wants an id
