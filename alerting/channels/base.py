"""The one interface every notification channel implements.

The dispatcher hands a channel one :class:`Outgoing` at a time and learns the outcome from the
return value or the exception: :class:`TransientError` means "try again later with the same
key", :class:`PermanentError` means "retrying cannot help; tell the admin". Anything else a
channel raises is treated as transient, so a bug in one provider never loses a notification.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from radmon.errors import InputError


@dataclass(frozen=True)
class Outgoing:
    """One notification to one address, as the outbox holds it."""

    key: str  # idempotency key: the same on every retry of this notification
    channel: str  # the configured channel's name
    address: str  # phone number (E.164), e-mail address, or URL for a webhook
    text: str  # the body, already rendered and fitted to the channel (SMS text, mail body)
    subject: str = ""
    payload: dict[str, Any] = field(default_factory=dict)  # structured form (webhook JSON)
    attempt: int = 1  # 1 for the first try


@dataclass(frozen=True)
class Delivered:
    """What the provider answered on success."""

    provider_id: str | None = None  # the provider's message id, if it gives one
    detail: str = ""


class TransientError(Exception):
    """The send may succeed later: timeout, connection refused, 5xx, 429, modem busy."""


class PermanentError(Exception):
    """The send can never succeed as it is: bad number, rejected credentials, 4xx."""


class ChannelOptions(BaseModel):
    """A channel's own keys under ``alerting.channels[]`` (besides name, type and provider)."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float = 10.0


class Channel(ABC):
    """A way to reach a person: one subclass per provider, registered in ``channels``."""

    kind: ClassVar[str]  # "sms", "email" or "webhook": which contact address it uses
    Options: ClassVar[type[ChannelOptions]] = ChannelOptions

    def __init__(self, name: str, options: ChannelOptions) -> None:
        self.name = name
        self.options = options

    @classmethod
    def from_config(cls, name: str, raw: dict[str, Any], where: str) -> Channel:
        """Build from the channel's extra configuration keys; exit-2 error naming the key."""
        try:
            options = cls.Options.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = "".join(f".{p}" for p in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise InputError(f"{where}{key}: {message}") from exc
        return cls(name, options)

    @abstractmethod
    async def send(self, message: Outgoing) -> Delivered:
        """Deliver *message* or raise TransientError / PermanentError."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections (a modem's serial port); called once before the first send."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called once at shutdown."""

    def listen(self, on_reply: OnReply) -> None:  # noqa: B027 - optional hook
        """Channels that can receive (a modem) call *on_reply* for each incoming message."""


# Someone answered by SMS (a GSM modem's inbox): (sender phone, text). The alerting service
# turns "OK 123" into an acknowledgement.
OnReply = Callable[[str, str], Awaitable[None]]
