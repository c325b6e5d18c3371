"""The AT conversation with a GSM modem (3GPP TS 27.007 / 27.005) on an asyncio serial port.

One command at a time; the caller serialises. Every command has a deadline. A modem that does
not answer in time, or a port that goes away, leaves the conversation in an unknown state
(``AtError.broken``): the caller closes the session and initialises the modem again on a new
one rather than guess which answer belongs to which command.

Serial I/O is pyserial-asyncio-fast: the event loop watches the port's file descriptor, so no
thread and no blocking call is involved after the port is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

import serial
from serial_asyncio_fast import create_serial_connection

CTRL_Z = b"\x1a"
ESC = b"\x1b"

# +CMS ERROR <err> (TS 27.005 §3.2.5): 0-127 are RP causes (TS 24.011 §E.2), 128-255 TP-FCS
# (TS 23.040 §9.2.3.22), 300-340 the modem's own. Named ones are reported by name.
CMS_REASONS: dict[int, str] = {
    1: "unassigned number",
    8: "operator determined barring",
    10: "call barred",
    21: "short message transfer rejected",
    27: "destination out of service",
    28: "unidentified subscriber",
    29: "facility rejected",
    30: "unknown subscriber",
    38: "network out of order",
    41: "temporary failure",
    42: "congestion",
    47: "resources unavailable",
    50: "requested facility not subscribed",
    69: "requested facility not implemented",
    81: "invalid short message reference",
    95: "invalid message",
    96: "invalid mandatory information",
    97: "message type non-existent",
    98: "message not compatible with protocol state",
    99: "information element non-existent",
    111: "protocol error",
    127: "interworking error",
    128: "telematic interworking not supported",
    129: "short message type 0 not supported",
    143: "unspecified TP-PID error",
    144: "data coding scheme not supported",
    145: "message class not supported",
    159: "unspecified TP-DCS error",
    176: "TPDU not supported",
    192: "service centre busy",
    193: "no service centre subscription",
    194: "service centre system failure",
    195: "invalid destination address",
    196: "destination barred",
    198: "validity period format not supported",
    199: "validity period not supported",
    208: "SIM SMS storage full",
    210: "error in the modem",
    211: "memory capacity exceeded",
    212: "SIM toolkit busy",
    255: "unspecified error",
    300: "modem failure",
    301: "SMS service of the modem reserved",
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    305: "invalid text mode parameter",
    310: "SIM not inserted",
    311: "SIM PIN required",
    312: "PH-SIM PIN required",
    313: "SIM failure",
    314: "SIM busy",
    315: "SIM wrong",
    316: "SIM PUK required",
    317: "SIM PIN2 required",
    318: "SIM PUK2 required",
    320: "memory failure",
    321: "invalid memory index",
    322: "memory full",
    330: "service centre address unknown",
    331: "no network service",
    332: "network timeout",
    340: "no +CNMA acknowledgement expected",
    500: "unknown error",
}
# Codes a retry cannot fix: the number, the subscription, the message or the SIM is wrong.
# Everything else - network, congestion, busy, unknown and vendor codes - is transient.
PERMANENT_CMS = frozenset(
    {1, 8, 10, 21, 29, 30, 50, 69, 95, 96, 97, 99, 128, 129, 143, 144, 145, 159, 176}
    | {193, 195, 196, 198, 199, 303, 304, 305, 311, 312, 315, 316, 317, 318, 330}
)
# +CME ERROR <err> (TS 27.007 §9.2.1), as AT+CPIN answers.
CME_REASONS: dict[int, str] = {
    3: "operation not allowed",
    4: "operation not supported",
    5: "PH-SIM PIN required",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",
    15: "SIM wrong",
    16: "incorrect password",
    17: "SIM PIN2 required",
    18: "SIM PUK2 required",
    30: "no network service",
    31: "network timeout",
    100: "unknown error",
}
PERMANENT_CME = frozenset({4, 5, 11, 12, 15, 16, 17, 18})

_MESSAGE_HEADERS = ("+CMGL:", "+CMGR:")
_ERROR_LINE = re.compile(r"ERROR|\+CMS ERROR:.*|\+CME ERROR:.*|COMMAND NOT SUPPORT|NO CARRIER")
_CODE = re.compile(r"\+(CMS|CME) ERROR:\s*(\d+)\s*$")
_CMGS = re.compile(r"\+CMGS:\s*(\d+)")
_EOL = re.compile(rb"[\r\n]")


class AtError(Exception):
    """A command failed. *permanent*: retrying cannot help. *broken*: the session is no longer
    usable (no answer, port gone); open a new one. *code*: the +CMS/+CME ERROR number."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        broken: bool = False,
        code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.broken = broken
        self.code = code


def classify(line: str) -> AtError:
    """What an error result means: ``+CMS ERROR: 195`` is permanent, ``ERROR`` is not."""
    match = _CODE.match(line)
    if match is None:
        return AtError(f"modem answered {line!r}")
    table, code = match.group(1), int(match.group(2))
    reasons, permanent = (
        (CMS_REASONS, PERMANENT_CMS) if table == "CMS" else (CME_REASONS, PERMANENT_CME)
    )
    reason = f"{line} ({reasons[code]})" if code in reasons else line
    return AtError(reason, permanent=code in permanent, code=code)


class _Port(asyncio.Protocol):
    """Bytes from the serial port, kept until the conversation reads them."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.arrived = asyncio.Event()
        self.closed = False
        self.lost: Exception | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed, self.lost = True, exc
        self.arrived.set()


class AtSession:
    """One open serial port and the AT conversation on it."""

    def __init__(self, name: str, transport: asyncio.Transport, port: _Port) -> None:
        self.name = name
        self._transport = transport
        self._port = port

    @classmethod
    async def open(cls, name: str, baudrate: int, timeout: float) -> AtSession:
        """Open *name*; locked against a second process (flock) so two never interleave."""
        loop = asyncio.get_running_loop()
        port = _Port()
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await create_serial_connection(
                    loop, lambda: port, name, baudrate=baudrate, exclusive=True
                )
        except (serial.SerialException, OSError, TimeoutError) as exc:
            raise AtError(f"cannot open {name}: {exc}", broken=True) from exc
        return cls(name, transport, port)

    @property
    def alive(self) -> bool:
        return not self._port.closed

    async def aclose(self) -> None:
        if not self._transport.is_closing():  # a second abort() would fail in the library
            self._transport.abort()  # not close(): its flush would wait for a modem that is gone
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                while not self._port.closed:
                    self._port.arrived.clear()
                    await self._port.arrived.wait()

    def write(self, data: bytes) -> None:
        self._transport.write(data)

    def discard(self) -> None:
        """Drop what nobody asked for: URCs (+CMTI, RING), late answers of an aborted command."""
        self._port.buffer.clear()

    def _line(self) -> str | None:
        buffer = self._port.buffer
        while match := _EOL.search(buffer):
            raw = bytes(buffer[: match.start()])
            del buffer[: match.end()]
            if raw.strip():
                return raw.decode("latin-1").strip()
        return None

    async def _wait(self, what: str, deadline: float) -> None:
        """Until more bytes arrive; a broken AtError when the port goes or the deadline passes."""
        if self._port.closed:
            raise AtError(f"{self.name} went away during {what}: {self._port.lost}", broken=True)
        self._port.arrived.clear()
        try:
            async with asyncio.timeout(max(deadline - asyncio.get_running_loop().time(), 0)):
                await self._port.arrived.wait()
        except TimeoutError:
            self.write(ESC)  # in case it still waits for message text at the "> " prompt
            raise AtError(f"modem did not answer {what} in time", broken=True) from None
        if self._port.closed:
            raise AtError(f"{self.name} went away during {what}: {self._port.lost}", broken=True)

    async def _result(self, command: str, deadline: float) -> list[str]:
        info: list[str] = []
        message_next = False  # the line after a +CMGL:/+CMGR: header is a message, not a result
        while True:
            line = self._line()
            if line is None:
                await self._wait(command, deadline)
            elif message_next:  # in text mode an SMS saying "OK" or "ERROR" is such a line
                info.append(line)
                message_next = False
            elif line == "OK":
                return info
            elif _ERROR_LINE.fullmatch(line):
                raise classify(line)
            elif line != command:  # not the echo (before ATE0)
                info.append(line)
                message_next = line.startswith(_MESSAGE_HEADERS)

    async def command(self, command: str, timeout: float) -> list[str]:
        """Run one AT command; its information lines (``+CPIN: READY``) without the OK."""
        deadline = asyncio.get_running_loop().time() + timeout
        self.discard()
        self.write(command.encode("ascii") + b"\r")
        return await self._result(command, deadline)

    async def submit(self, command: str, body: bytes, timeout: float) -> int | None:
        """``AT+CMGS``: wait for the "> " prompt, send *body* and Ctrl-Z; the message reference."""
        deadline = asyncio.get_running_loop().time() + timeout
        self.discard()
        self.write(command.encode("ascii") + b"\r")
        while not self._port.buffer.lstrip(b"\r\n").startswith(b">"):
            line = self._line()
            if line is None:
                await self._wait(command, deadline)
            elif _ERROR_LINE.fullmatch(line):
                raise classify(line)
        self.discard()
        self.write(body + CTRL_Z)
        for line in await self._result(command, deadline):
            if match := _CMGS.match(line):
                return int(match.group(1))
        return None  # OK without a reference: sent all the same
