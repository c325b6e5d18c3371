"""SMS through a GSM modem on a serial port: AT commands of 3GPP TS 27.005.

A modem with a local SIM still reaches the on-call officer when the internet uplink or an SMS
gateway is down, and it is the one channel that can *receive*: officers acknowledge an alarm by
answering "OK 123", which :meth:`SmsModemChannel.listen` reads from the SIM.

The AT conversation (``alerting.gsm.at``) never blocks the event loop. Only one runs at a time:
one lock for sending, reading and deleting. A port that disappears (USB modem unplugged, modem
rebooted) or a modem that stops answering is closed, then reopened and re-initialised on the
next use, no sooner than a backoff of 1 s doubling to 60 s. Error results are classified in
``alerting.gsm.at`` (``PERMANENT_CMS``): the number, subscription, message or SIM is wrong ->
PermanentError; network, congestion, busy, unknown -> TransientError.

Modes: ``pdu`` (default) sends GSM-7 or UCS-2 and concatenates long texts
(``alerting.gsm.pdu``). ``text`` is for modems without PDU mode and sends only what text mode
sends portably: one part of plain-ASCII GSM-7 text (character set ``IRA``). Anything else - a
Vietnamese text with diacritics, more than 160 characters - is refused with PermanentError
rather than left to a firmware's character conversion; render such templates with
``alerting.smstext.unaccent`` or use ``pdu``. Reading replies in text mode is best effort: a
reply that is exactly "OK" or "ERROR" reads as the end of the listing and arrives empty.

SIM PIN: entered whenever the SIM asks for it - until the SIM refuses it (or does not answer)
once. From then on the channel leaves the modem alone until restarted, because three wrong PINs
lock the SIM behind its PUK; every send fails with PermanentError naming the problem.

Duplicates: a modem cannot deduplicate - nothing it sends carries our idempotency key. The
channel never resubmits a part on its own and returns as soon as the last ``+CMGS`` arrives.
Within one run it remembers, per key, which parts of a long message the modem accepted; a
retry sends only the rest, with the same concatenation reference, so the phone still joins
them. What remains: (1) the process dies after the modem accepted a part but before the
dispatcher recorded the result; (2) the modem accepts but answers after ``timeout_s`` - both
end in the retry sending the (rest of the) message again.

Replies: every ``poll_s`` the inbox is listed (``AT+CMGL``); each message (parts of a long one
joined) is handed to ``on_reply(sender, text)`` and deleted (``AT+CMGD``) only after it
returned, so a crash re-reads a reply instead of losing it, and a failing ``on_reply`` leaves
it on the SIM to be tried again at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import itertools
import logging
import random
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from alerting.channels import register
from alerting.channels.base import (
    Channel,
    ChannelOptions,
    Delivered,
    OnReply,
    Outgoing,
    PermanentError,
    TransientError,
)
from alerting.gsm.at import ESC, AtError, AtSession
from alerting.gsm.pdu import Message, PduError, decode, encode_submit
from alerting.smstext import segments

log = logging.getLogger(__name__)

_SEPARATORS = re.compile(r"[\s().-]")
_NUMBER = re.compile(r"\+?\d{3,20}")
_TEXT_MODE_SAFE = re.compile(r"[\n\r -_a-~]*")  # printable ASCII but "`", which GSM-7 lacks


class SmsModemOptions(ChannelOptions):
    port: str = Field(min_length=1)  # e.g. /dev/serial/by-id/usb-...-if00 (stable across replugs)
    baudrate: int = Field(115200, gt=0)
    pin: str | None = Field(None, pattern=r"^\d{4,8}$")  # quoted in YAML: "0123" is not 83
    mode: Literal["pdu", "text"] = "pdu"
    poll_s: float = Field(10.0, gt=0)  # how often the inbox is read for replies
    timeout_s: float = Field(30.0, gt=0)  # for +CMGS and +CMGL; other commands min(10 s, this)


@dataclass
class _Progress:
    """What the modem accepted of one notification, so a retry sends only the rest."""

    fingerprint: tuple[str, str]
    parts: list[tuple[str, bytes]]  # (AT+CMGS command, message body)
    references: list[int | None] = field(default_factory=list)


@register("sms", "modem")
class SmsModemChannel(Channel):
    """SMS through a GSM modem; also reads replies from its SIM."""

    Options = SmsModemOptions
    options: SmsModemOptions

    RECONNECT_FIRST_S = 1.0
    RECONNECT_MAX_S = 60.0
    REMEMBER_KEYS = 256  # notifications whose accepted parts are remembered for a retry
    PARTIAL_REPLY_WAIT_S = 300.0  # a long reply missing parts is handed on as it is after this

    def __init__(self, name: str, options: ChannelOptions) -> None:
        super().__init__(name, options)
        self._lock = asyncio.Lock()
        self._session: AtSession | None = None
        self._backoff = 0.0
        self._next_open = 0.0
        self._fatal: str | None = None  # latched: the SIM needs a person (wrong PIN, PUK)
        self._progress: OrderedDict[str, _Progress] = OrderedDict()
        self._next_ref = random.randrange(256)
        self._poller: asyncio.Task[None] | None = None
        self._partial_since: dict[tuple[str, int, int], float] = {}

    @property
    def _short(self) -> float:
        return min(self.options.timeout_s, 10.0)

    # -- connection ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open and initialise the modem now; a modem not there yet is retried on first use."""
        try:
            async with self._conversation():
                pass
        except TransientError as exc:
            log.warning("%s: modem not ready (%s); retrying when needed", self.name, exc)
        except PermanentError as exc:
            if not self._fatal:  # a latched problem is logged where it is found
                log.error("%s: modem unusable: %s", self.name, exc)

    async def aclose(self) -> None:
        """Stop reading replies and close the port."""
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        await self._drop()

    async def _drop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.aclose()

    @contextlib.asynccontextmanager
    async def _conversation(self) -> AsyncIterator[AtSession]:
        """The lock and an initialised session; AtError turned into the dispatcher's errors."""
        async with self._lock:
            try:
                yield await self._connected()
            except AtError as exc:
                if exc.broken:
                    await self._drop()
                raise (PermanentError if exc.permanent else TransientError)(str(exc)) from exc

    async def _connected(self) -> AtSession:
        """The open, initialised session; (re)opens it, no sooner than the backoff allows."""
        if self._fatal:
            raise PermanentError(self._fatal)
        if self._session is not None and self._session.alive:
            return self._session
        await self._drop()
        wait = self._next_open - time.monotonic()
        if wait > 0:
            raise TransientError(f"{self.options.port} unavailable; next attempt in {wait:.1f} s")
        try:
            session = await AtSession.open(self.options.port, self.options.baudrate, self._short)
            try:
                await self._initialise(session)
            except BaseException:
                await session.aclose()
                raise
        except Exception:
            self._backoff = min(2 * self._backoff, self.RECONNECT_MAX_S) or self.RECONNECT_FIRST_S
            self._next_open = time.monotonic() + self._backoff
            raise
        self._backoff = 0.0
        self._session = session
        log.info("%s: modem on %s ready (%s mode)", self.name, session.name, self.options.mode)
        return session

    async def _initialise(self, session: AtSession) -> None:
        session.write(ESC)  # a modem left at the "> " prompt would take our commands as text
        await asyncio.sleep(0.05)
        await session.command("AT", self._short)
        await session.command("ATE0", self._short)
        await session.command("AT+CMEE=1", self._short)  # numeric +CMS/+CME ERROR codes
        await self._unlock(session)
        pdu = self.options.mode == "pdu"
        try:
            await session.command(f"AT+CMGF={0 if pdu else 1}", self._short)
        except AtError as exc:
            if exc.broken or exc.code is not None:
                raise
            other = "text" if pdu else "pdu"
            raise AtError(
                f"modem refuses {self.options.mode} mode ({exc}); try mode: {other}",
                permanent=True,
            ) from exc
        if not pdu:
            await self._optional(session, 'AT+CSCS="IRA"')  # text as ASCII, not GSM octets
        # Store incoming SMS and tell us (+CMTI) rather than route them past the SIM (+CMT),
        # where nobody would read them.
        await self._optional(session, "AT+CNMI=2,1,0,0,0")

    async def _optional(self, session: AtSession, command: str) -> None:
        try:
            await session.command(command, self._short)
        except AtError as exc:
            if exc.broken:
                raise
            log.warning("%s: modem refused %s: %s", self.name, command, exc)

    async def _unlock(self, session: AtSession) -> None:
        info = await session.command("AT+CPIN?", self._short)
        state = next((i.split(":", 1)[1].strip() for i in info if i.startswith("+CPIN:")), "")
        if state in ("READY", "SIM PIN2", "SIM PUK2"):  # PIN2 guards phonebooks, not SMS
            return
        if state != "SIM PIN":
            self._latch(f"the SIM asks for {state or 'an unknown code'}; unlock it, then restart")
        if self.options.pin is None:
            self._latch("the SIM asks for its PIN: set pin in the channel options")
        try:
            await session.command(f'AT+CPIN="{self.options.pin}"', self._short)
        except AtError as exc:
            self._latch(
                f"the SIM did not accept the PIN ({exc}); not trying again, as three wrong "
                "PINs lock it behind its PUK: check pin, then restart"
            )
        for _ in range(20):  # the SIM takes a moment to become ready after its PIN
            info = await session.command("AT+CPIN?", self._short)
            if any("READY" in i for i in info):
                return
            await asyncio.sleep(0.25)
        raise AtError("the SIM accepted the PIN but is not ready yet")

    def _latch(self, reason: str) -> None:
        self._fatal = reason
        log.error("%s: %s", self.name, reason)
        raise PermanentError(reason)

    # -- sending ------------------------------------------------------------------------------

    async def send(self, message: Outgoing) -> Delivered:
        """Send every part not yet accepted; the modem's message references, comma-separated."""
        progress = self._progress_for(message)
        try:
            async with self._conversation() as session:
                for command, body in progress.parts[len(progress.references) :]:
                    reference = await session.submit(command, body, self.options.timeout_s)
                    progress.references.append(reference)
        except PermanentError:
            self._progress.pop(message.key, None)
            raise
        self._progress.pop(message.key, None)
        references = ",".join("?" if r is None else str(r) for r in progress.references)
        parts = len(progress.parts)
        return Delivered(provider_id=references, detail=f"{parts} part(s) via {session.name}")

    def _progress_for(self, message: Outgoing) -> _Progress:
        number = _SEPARATORS.sub("", message.address)
        if not _NUMBER.fullmatch(number):
            raise PermanentError(
                f"invalid phone number {message.address!r}: expected digits, optionally after +"
            )
        fingerprint = (number, message.text)
        progress = self._progress.get(message.key)
        if progress is None or progress.fingerprint != fingerprint:
            progress = _Progress(fingerprint, self._parts(number, message.text))
            self._progress[message.key] = progress
            while len(self._progress) > self.REMEMBER_KEYS:
                self._progress.popitem(last=False)
        self._progress.move_to_end(message.key)
        return progress

    def _parts(self, number: str, text: str) -> list[tuple[str, bytes]]:
        if self.options.mode == "text":
            encoding, count = segments(text)
            if encoding != "gsm7" or not _TEXT_MODE_SAFE.fullmatch(text):
                raise PermanentError(
                    "text mode sends plain-ASCII GSM-7 only and this text is not "
                    "(Vietnamese diacritics, µ, €...): use mode: pdu, or unaccent the template"
                )
            if count > 1:
                raise PermanentError(
                    f"text mode sends one SMS (160 characters) and this text needs {count}: "
                    "use mode: pdu, or shorten the template"
                )
            toa = 145 if number.startswith("+") else 129
            return [(f'AT+CMGS="{number}",{toa}', text.encode("ascii"))]
        encoding, count = segments(text)
        reference = 0
        if count > 1:
            reference, self._next_ref = self._next_ref, (self._next_ref + 1) % 256
        try:
            pdus = encode_submit(number, text, concat_ref=reference)
        except PduError as exc:
            raise PermanentError(str(exc)) from exc
        return [(f"AT+CMGS={p.length}", p.hex.encode("ascii")) for p in pdus]

    # -- replies ------------------------------------------------------------------------------

    def listen(self, on_reply: OnReply) -> None:
        """Read the inbox every ``poll_s`` in a background task (call from the running loop)."""
        if self._poller is not None:
            raise RuntimeError(f"{self.name} is already listening")
        self._poller = asyncio.get_running_loop().create_task(
            self._poll_forever(on_reply), name=f"{self.name}-inbox"
        )

    async def _poll_forever(self, on_reply: OnReply) -> None:
        last = ""
        while True:
            try:
                await self.poll_inbox(on_reply)
                last = ""
            except (TransientError, PermanentError) as exc:
                if str(exc) != last:  # once per distinct problem, not every poll
                    log.warning("%s: cannot read replies: %s", self.name, exc)
                last = str(exc)
            except Exception:
                log.exception("%s: reading replies failed", self.name)
            await asyncio.sleep(self.options.poll_s)

    async def poll_inbox(self, on_reply: OnReply) -> int:
        """Hand each stored reply to *on_reply*, deleting it after; how many were handled."""
        async with self._conversation() as session:
            stored, junk = await self._list(session)
            for index in junk:
                await session.command(f"AT+CMGD={index}", self._short)
        handled = 0
        for indexes, sender, text in self._assemble(stored):
            try:
                await on_reply(sender, text)
            except Exception:
                log.exception("%s: reply from %s not handled; kept on the SIM", self.name, sender)
                continue
            async with self._conversation() as session:
                for index in indexes:
                    await session.command(f"AT+CMGD={index}", self._short)
            handled += 1
        return handled

    async def _list(self, session: AtSession) -> tuple[dict[int, Message], list[int]]:
        """The inbox by index, and the indexes of what is not a readable SMS (to delete)."""
        stored: dict[int, Message] = {}
        junk: list[int] = []
        if self.options.mode == "pdu":
            lines = await session.command("AT+CMGL=4", self.options.timeout_s)
            for header, body in itertools.pairwise(lines):
                if not header.startswith("+CMGL:"):
                    continue
                index = int(header[6:].split(",")[0])
                try:
                    message = decode(body)
                    if message.kind != "deliver":
                        raise PduError(f"an {message.kind}, not a received SMS")
                    stored[index] = message
                except PduError as exc:
                    log.warning(
                        "%s: deleting unreadable SMS %d (%s): %s", self.name, index, exc, body
                    )
                    junk.append(index)
            return stored, junk
        lines = await session.command('AT+CMGL="ALL"', self.options.timeout_s)
        current: tuple[int, str] | None = None
        texts: dict[int, list[str]] = {}
        senders: dict[int, str] = {}
        for line in lines:
            if line.startswith("+CMGL:"):
                fields = next(csv.reader([line[6:].strip()]))
                current = (int(fields[0]), fields[2] if len(fields) > 2 else "")
                senders[current[0]], texts[current[0]] = current[1], []
            elif current is not None:
                texts[current[0]].append(line)
        for index, sender in senders.items():
            stored[index] = Message("deliver", sender, "\n".join(texts[index]), "gsm7")
        return stored, junk

    def _assemble(self, stored: dict[int, Message]) -> list[tuple[list[int], str, str]]:
        """(indexes, sender, text) per reply: the parts of a long reply joined once all are in."""
        replies: list[tuple[list[int], str, str]] = []
        groups: dict[tuple[str, int, int], dict[int, int]] = {}
        for index in sorted(stored):
            message = stored[index]
            concat = message.concat
            if concat is None or concat.total <= 1:
                replies.append(([index], message.number, message.text))
            else:
                key = (message.number, concat.ref, concat.total)
                groups.setdefault(key, {})[concat.seq] = index
        now = time.monotonic()
        for key in set(self._partial_since) - set(groups):
            del self._partial_since[key]
        for key, parts in groups.items():
            complete = len(parts) == key[2]
            if not complete and now - self._partial_since.setdefault(key, now) < (
                self.PARTIAL_REPLY_WAIT_S
            ):
                continue
            self._partial_since.pop(key, None)
            indexes = [parts[seq] for seq in sorted(parts)]
            replies.append((indexes, key[0], "".join(stored[i].text for i in indexes)))
        return replies
