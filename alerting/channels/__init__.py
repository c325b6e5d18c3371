"""Notification channels: one module per provider, registered here by type and provider.

A new provider is one new module with a :class:`Channel` subclass decorated by
:func:`register`, plus its import below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alerting.channels.base import (
    Channel,
    ChannelOptions,
    Delivered,
    OnReply,
    Outgoing,
    PermanentError,
    TransientError,
)
from radmon.errors import InputError

REGISTRY: dict[tuple[str, str | None], type[Channel]] = {}


def register(kind: str, provider: str | None = None) -> Callable[[type[Channel]], type[Channel]]:
    """Class decorator: make *kind* (and *provider*, for SMS) buildable from configuration."""

    def add(cls: type[Channel]) -> type[Channel]:
        cls.kind = kind
        REGISTRY[(kind, provider)] = cls
        return cls

    return add


def build(name: str, kind: str, provider: str | None, raw: dict[str, Any], where: str) -> Channel:
    """The channel configured at *where* (``alerting.channels[i]``), or an exit-2 error."""
    cls = REGISTRY.get((kind, provider))
    if cls is None:
        known = ", ".join(sorted(f"{k}/{p}" if p else k for k, p in REGISTRY))
        raise InputError(f"{where}: unknown channel type {kind!r}/{provider!r}; known: {known}")
    return cls.from_config(name, raw, where)


# Registrations (import for the side effect of @register).
from alerting.channels import (  # noqa: E402, F401
    email_smtp,
    sms_esms,
    sms_http,
    sms_modem,
    sms_speedsms,
    sms_twilio,
    webhook,
)

__all__ = [
    "REGISTRY",
    "Channel",
    "ChannelOptions",
    "Delivered",
    "OnReply",
    "Outgoing",
    "PermanentError",
    "TransientError",
    "build",
    "register",
]
