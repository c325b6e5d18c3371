"""What every HTTP-based channel shares: one client, a hard deadline, one error classification.

Providers differ in how they phrase success and failure inside a 2xx answer; they do not differ
in what a timeout, a refused connection or an HTTP 503 means. That part lives here once, so a
new provider only parses its own answer. Reasons name the host, never the full URL (gateways
put keys in query strings), and quote at most a short excerpt of the answer.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any
from urllib.parse import urlsplit

import httpx

from alerting.channels.base import Channel, PermanentError, TransientError

# Statuses that say "not now" rather than "never".
TRANSIENT_STATUSES = frozenset({408, 425, 429})
EXCERPT_CHARS = 120


class HttpChannel(Channel):
    """A channel that talks to one HTTP API through one ``httpx.AsyncClient``.

    The client is created by :meth:`start` (or on first use, so a forgotten ``start`` costs
    nothing) and closed by :meth:`aclose`; connections are reused between messages.
    """

    _client: httpx.AsyncClient | None = None

    def auth(self) -> httpx.Auth | None:
        """Credentials for every request; providers with Basic auth override this."""
        return None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.options.timeout_s),
                auth=self.auth(),
                headers={"User-Agent": "radmon-alerting"},
                follow_redirects=False,
            )
        return self._client

    async def start(self) -> None:
        self.client()

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        """POST and return the answer whatever its status; transport failures become errors.

        The whole exchange (connect, send, wait, read) is bounded by ``timeout_s``: httpx's own
        timeouts apply per phase, so a gateway that trickles bytes could otherwise hold on.
        """
        return await request(self.client(), "POST", url, self.options.timeout_s, **kwargs)


async def request(
    client: httpx.AsyncClient, method: str, url: str, timeout_s: float, **kwargs: Any
) -> httpx.Response:
    """One request under a hard deadline, with httpx's exceptions mapped to ours."""
    host = host_of(url)
    try:
        async with asyncio.timeout(timeout_s):
            return await client.request(method, url, **kwargs)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise TransientError(f"{host}: no answer within {timeout_s:g} s") from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise PermanentError(f"invalid URL for {host}: {exc}") from exc
    except httpx.ConnectError as exc:
        raise TransientError(f"cannot connect to {host}: {_short(exc)}") from exc
    except httpx.TransportError as exc:  # reset, closed without an answer, protocol errors
        raise TransientError(f"connection to {host} lost: {_short(exc)}") from exc


def raise_for_status(response: httpx.Response, who: str = "") -> None:
    """Nothing for 2xx; TransientError for 408/425/429/5xx; PermanentError for the rest.

    3xx counts as permanent: redirects are not followed, so it means a wrong URL.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"{who or host_of(str(response.url))}: HTTP {status}"
    excerpt = body_excerpt(response)
    if excerpt:
        reason += f": {excerpt}"
    if status in TRANSIENT_STATUSES or status >= 500:
        raise TransientError(reason)
    raise PermanentError(reason)


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The answer as a JSON object, or None when it is empty, not JSON, or not an object."""
    try:
        data = json.loads(response.content or b"null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def provider_id(response: httpx.Response, *keys: str) -> str | None:
    """The first of *keys* present (and non-empty) in a JSON answer, as a string."""
    data = json_object(response) or {}
    for key in keys:
        value = data.get(key)
        if value not in (None, ""):
            return str(value)
    return None


def body_excerpt(response: httpx.Response, limit: int = EXCERPT_CHARS) -> str:
    """The start of the answer on one line, for a reason an admin can read."""
    text = " ".join(response.text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def host_of(url: str) -> str:
    """``host[:port]`` of *url*: enough to say which gateway, without paths or keys."""
    try:
        parts = urlsplit(url)
        return parts.netloc.rpartition("@")[2] or url[:40]
    except ValueError:
        return url[:40]


def msisdn(address: str) -> str:
    """An E.164 address without its ``+``, the form Vietnamese gateways expect (84...)."""
    return address.strip().removeprefix("+")


def _short(exc: BaseException) -> str:
    """The most telling words for a transport failure: the OS's own ("connection refused")."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno:
            return os.strerror(cause.errno).lower()
        cause = cause.__cause__ or cause.__context__
    text = str(exc) or type(exc).__name__
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"
