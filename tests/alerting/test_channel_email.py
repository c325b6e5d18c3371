"""The e-mail channel against aiosmtpd on loopback, with STARTTLS/implicit TLS from a trustme CA."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from alerting.channels import Channel, Delivered, Outgoing, PermanentError, TransientError, build
from alerting.channels.email_smtp import message_id
from radmon.errors import InputError

USER, PASSWORD = "radmon", "s3cret-pass"
SUBJECT = "[RADMON] Cảnh báo bức xạ trạm Quy Nhơn"
BODY = "Suất liều gamma 0,92 µSv/h vượt ngưỡng 0,50 µSv/h.\nTrả lời OK 17 để xác nhận."


class Recorder:
    """An SMTP handler that refuses some recipients the way real servers do."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.sessions: list[dict[str, Any]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("unknown@"):
            return "550 5.1.1 <unknown@example.vn>: user unknown"
        if address.startswith("busy@"):
            return "451 4.3.0 mailbox temporarily unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(parsed)
        self.sessions.append({"tls": session.ssl is not None, "auth": session.authenticated})
        return "250 2.0.0 queued"


def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


class LoopbackController(Controller):
    """aiosmtpd's Controller on an ephemeral port (it cannot take port 0 by itself)."""

    def _create_server(self):
        async def create():
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context
            )
            self.port = server.sockets[0].getsockname()[1]
            return server

        return create()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def starttls_server(recorder: Recorder, server_tls: ssl.SSLContext) -> Iterator[Controller]:
    controller = LoopbackController(
        recorder,
        hostname="127.0.0.1",
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    controller.start()
    yield controller
    controller.stop()


def channel(port: int, ca_file: str | None, **extra: Any) -> Channel:
    options = {
        "host": "127.0.0.1",
        "port": port,
        "username": USER,
        "password": PASSWORD,
        "from_address": "radmon@example.vn",
        "ca_file": ca_file,
        "timeout_s": 3,
    } | extra
    return build("mail", "email", None, options, "alerting.channels[1]")


def outgoing(address: str = "duty@example.vn", key: str = "alarm-17:duty") -> Outgoing:
    return Outgoing(key=key, channel="mail", address=address, text=BODY, subject=SUBJECT)


def send(ch: Channel, *messages: Outgoing) -> list[Delivered | Exception]:
    async def main() -> list[Delivered | Exception]:
        await ch.start()
        outcomes: list[Delivered | Exception] = []
        for message in messages:
            try:
                outcomes.append(await ch.send(message))
            except (TransientError, PermanentError) as exc:
                outcomes.append(exc)
        await ch.aclose()
        return outcomes

    return asyncio.run(main())


def test_mail_arrives_over_starttls_with_utf8_subject_body_and_stable_message_id(
    starttls_server: Controller, recorder: Recorder, ca_file: str
):
    mail = channel(starttls_server.port, ca_file)
    first, retry = send(mail, outgoing(), outgoing())
    assert first == retry == Delivered(provider_id="<alarm-17%3Aduty@radmon>")
    assert len(recorder.messages) == 2
    for got in recorder.messages:
        assert got["Subject"] == SUBJECT
        assert got.get_content().replace("\r\n", "\n").rstrip("\n") == BODY
        assert got["From"] == "radmon@example.vn" and got["To"] == "duty@example.vn"
        assert got["X-Radmon-Key"] == "alarm-17:duty"
        assert got["Message-ID"] == "<alarm-17%3Aduty@radmon>"
        assert got.get_content_charset() == "utf-8"
    assert recorder.sessions == [{"tls": True, "auth": True}] * 2


def test_implicit_tls(recorder: Recorder, server_tls: ssl.SSLContext, ca_file: str):
    controller = LoopbackController(recorder, hostname="127.0.0.1", ssl_context=server_tls)
    controller.start()
    try:
        mail = channel(controller.port, ca_file, tls=True, username="", password="")
        [result] = send(mail, outgoing())
    finally:
        controller.stop()
    assert isinstance(result, Delivered)
    assert recorder.messages[0]["Subject"] == SUBJECT


def test_unknown_user_550_is_permanent(starttls_server: Controller, ca_file: str):
    [result] = send(channel(starttls_server.port, ca_file), outgoing("unknown@example.vn"))
    assert isinstance(result, PermanentError)
    assert str(result).startswith("SMTP 550") and "user unknown" in str(result)


def test_temporary_451_is_transient(starttls_server: Controller, ca_file: str):
    [result] = send(channel(starttls_server.port, ca_file), outgoing("busy@example.vn"))
    assert isinstance(result, TransientError) and "451" in str(result)


def test_wrong_password_535_is_permanent_and_not_echoed(starttls_server: Controller, ca_file):
    mail = channel(starttls_server.port, ca_file, password="not-the-password")
    [result] = send(mail, outgoing())
    assert isinstance(result, PermanentError)
    assert "535" in str(result) and "username/password" in str(result)
    assert "not-the-password" not in str(result)


def test_server_down_is_transient(ca_file: str):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    [result] = send(channel(port, ca_file), outgoing())
    assert isinstance(result, TransientError) and f"127.0.0.1:{port}" in str(result)


def test_an_untrusted_certificate_is_not_accepted(starttls_server: Controller, recorder):
    [result] = send(channel(starttls_server.port, None), outgoing())  # system CAs only
    assert isinstance(result, TransientError)
    assert recorder.messages == []


def test_a_silent_server_is_cut_off_at_timeout():
    async def main() -> tuple[Delivered | Exception, float]:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(10)  # never sends the 220 greeting

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        mail = channel(server.sockets[0].getsockname()[1], None, timeout_s=0.3)
        started = time.monotonic()
        try:
            result: Delivered | Exception = await mail.send(outgoing())
        except TransientError as exc:
            result = exc
        elapsed = time.monotonic() - started
        server.close()
        return result, elapsed

    result, elapsed = asyncio.run(main())
    assert isinstance(result, TransientError) and "0.3 s" in str(result)
    assert elapsed < 1.5


def test_tls_modes_are_exclusive_and_implicit_tls_defaults_to_465():
    base = {"host": "mail.example.vn", "from_address": "radmon@example.vn"}
    with pytest.raises(InputError, match="mutually exclusive"):
        build("m", "email", None, base | {"tls": True, "starttls": True}, "alerting.channels[1]")
    implicit = build("m", "email", None, base | {"tls": True}, "alerting.channels[1]").options
    assert (implicit.port, implicit.starttls) == (465, False)
    default = build("m", "email", None, base, "alerting.channels[1]").options
    assert (default.port, default.starttls, default.tls) == (587, True, False)


def test_a_missing_ca_file_is_permanent():
    mail = channel(587, "/nonexistent/ca.pem")
    [result] = send(mail, outgoing())
    assert isinstance(result, PermanentError) and "ca_file" in str(result)


def test_message_id_is_valid_and_distinct_for_distinct_keys():
    assert message_id("a-1_b2") == "<a-1_b2@radmon>"
    assert message_id("a.b") == "<a%2Eb@radmon>"  # dots escaped: no ".." or leading dot
    assert message_id("a:1 b") == "<a%3A1%20b@radmon>"
    assert message_id("a%3A1") == "<a%253A1@radmon>" != message_id("a:1")
