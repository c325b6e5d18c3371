"""E-mail through an SMTP relay (aiosmtplib), one connection per message.

Alarm mail is rare, so a fresh connection per message costs little and never leaves a stale
session behind. The idempotency key becomes the ``Message-ID`` (``<key@radmon>``) and an
``X-Radmon-Key`` header, so a retry carries the same id and mail clients and archives can
tell a resend from a new alarm.

Classification follows SMTP's own reply classes: 5xx (550 unknown user, 535 authentication
failed, 554 rejected) is permanent; 4xx (451 try later, 421 closing) is transient, as are
refused connections, disconnects and timeouts. The whole exchange is bounded by ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import ssl
from email.message import EmailMessage

import aiosmtplib
from pydantic import Field, SecretStr, model_validator

from alerting.channels import register
from alerting.channels.base import (
    Channel,
    ChannelOptions,
    Delivered,
    Outgoing,
    PermanentError,
    TransientError,
)

# Characters kept as they are in a Message-ID's left part: RFC 5322 atext, except "%", which
# escapes the others (so distinct keys give distinct ids).
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$&'*+\-/=?^_`{|}~]")


class EmailOptions(ChannelOptions):
    host: str = Field(min_length=1)
    port: int = 587  # 465 when tls is set and port is not
    username: str = ""
    password: SecretStr = SecretStr("")
    starttls: bool = True  # upgrade a plain connection; off when tls is set
    tls: bool = False  # implicit TLS from the first byte (port 465 style)
    from_address: str = Field(min_length=3)
    ca_file: str | None = None  # PEM bundle of a private CA that signed the relay's certificate

    @model_validator(mode="after")
    def _one_tls_mode(self) -> EmailOptions:
        if self.tls:
            if self.starttls and "starttls" in self.model_fields_set:
                raise ValueError("tls and starttls are mutually exclusive")
            self.starttls = False
            if "port" not in self.model_fields_set:
                self.port = 465
        return self


def message_id(key: str) -> str:
    """``<key@radmon>``, with characters a Message-ID cannot hold percent-encoded."""
    left = _NOT_ATEXT.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), key)
    return f"<{left}@radmon>"


@register("email")
class EmailChannel(Channel):
    """Mail via SMTP with STARTTLS or implicit TLS, optionally authenticated."""

    Options = EmailOptions
    options: EmailOptions
    _tls_context: ssl.SSLContext | None = None

    def build(self, message: Outgoing) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.options.from_address
        mail["To"] = message.address
        mail["Subject"] = message.subject
        mail["Date"] = email.utils.formatdate(localtime=True)
        mail["Message-ID"] = message_id(message.key)
        mail["X-Radmon-Key"] = message.key
        mail.set_content(message.text, charset="utf-8")
        return mail

    def tls_context(self) -> ssl.SSLContext | None:
        """The verifying TLS context (with ``ca_file`` when set), built once."""
        if not (self.options.tls or self.options.starttls):
            return None
        if self._tls_context is None:
            try:
                self._tls_context = ssl.create_default_context(cafile=self.options.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise PermanentError(f"cannot load ca_file {self.options.ca_file}: {exc}") from exc
        return self._tls_context

    async def send(self, message: Outgoing) -> Delivered:
        opts = self.options
        where = f"{opts.host}:{opts.port}"
        try:
            async with asyncio.timeout(opts.timeout_s):
                await aiosmtplib.send(
                    self.build(message),
                    hostname=opts.host,
                    port=opts.port,
                    username=opts.username or None,
                    password=opts.password.get_secret_value() if opts.username else None,
                    use_tls=opts.tls,
                    start_tls=opts.starttls,
                    tls_context=self.tls_context(),
                    timeout=opts.timeout_s,
                )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            raise _by_code(first.code, first.message, where) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc.code, exc.message, where) from exc
        except (TimeoutError, aiosmtplib.SMTPTimeoutError) as exc:
            raise TransientError(f"SMTP {where}: no answer within {opts.timeout_s:g} s") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            text = " ".join(str(exc).split())[:120] or type(exc).__name__
            if "not supported" in text:  # no STARTTLS/AUTH/SMTPUTF8: a configuration mismatch
                raise PermanentError(f"SMTP {where}: {text} (check starttls/tls)") from exc
            raise TransientError(f"SMTP {where}: {text}") from exc
        return Delivered(provider_id=message_id(message.key))


def _by_code(code: int, text: str, where: str) -> Exception:
    reason = f"SMTP {code} from {where}: {' '.join(str(text).split())[:120]}"
    if code == 535:
        reason += " (check username/password)"
    return PermanentError(reason) if 500 <= code < 600 else TransientError(reason)
