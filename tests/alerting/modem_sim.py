"""A GSM modem on a pty, speaking enough AT (3GPP TS 27.005 / 27.007) for the modem channel.

The channel opens ``sim.port``: a symlink to the pty's slave, like the ``/dev/serial/by-id``
name a real USB modem gets, so an unplug (master closed, link removed) and a replug (a new pty,
the link moved) look to the channel like a modem disappearing and coming back under the same
name. Every submitted message is decoded and recorded in ``sent`` as "the network" got it.
The modem runs in a thread; the master fd is only ever touched by that thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pty
import queue
import re
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from alerting.gsm.pdu import Concat, PduError, decode, encode_deliver

VIETNAM = timezone(timedelta(hours=7))


@dataclass(frozen=True)
class Submitted:
    """One message (or one part of a long one) as the modem handed it to the network."""

    number: str
    text: str
    encoding: str
    concat: Concat | None
    mode: str  # "pdu" or "text"
    reference: int  # what +CMGS answered


class ModemSim:
    """The modem. Knobs for tests: ``hang``, :meth:`fail`, :meth:`unplug`, :meth:`replug`."""

    def __init__(self, directory: Path, *, pin: str | None = None) -> None:
        self.port = str(directory / "ttyModem")
        self.pin = pin
        self.sent: list[Submitted] = []
        self.commands: list[str] = []
        self.inbox: dict[int, str] = {}  # storage index -> SMS-DELIVER PDU
        self.deleted: list[int] = []
        self.pin_attempts: list[str] = []
        self.hang = False  # True: reads everything, answers nothing
        self.plugged = False
        self._faults: dict[str, list[str | None]] = {}
        self._lock = threading.Lock()
        self._requests: queue.Queue[tuple[Callable[[], None], threading.Event]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="modem-sim")
        self._master: int | None = None
        self._slave: int | None = None
        self._next_reference = 0
        self._next_index = 1
        self._reboot()

    # -- control (test thread) ----------------------------------------------------------------

    def start(self) -> ModemSim:
        self._thread.start()
        self._call(self._plug)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._unplug)
            self._stop.set()
            self._thread.join(2)

    def unplug(self) -> None:
        """The USB modem is pulled: the channel's port reports a hang-up, the name vanishes."""
        self._call(self._unplug)

    def replug(self) -> None:
        """It comes back, rebooted (echo on, PIN asked again), under the same name."""
        self._call(self._plug)

    def fail(self, command: str, answer: str, times: int = 1, after: int = 0) -> None:
        """Answer *times* commands starting with *command* with *answer*, after letting the
        next *after* of them through. For ``AT+CMGS`` the answer comes after the message text,
        as a network's refusal does.
        """
        with self._lock:
            queued = self._faults.setdefault(command.upper(), [])
            queued.extend([None] * after + [answer] * times)

    def deliver(
        self, sender: str, text: str, *, concat: Concat | None = None, when: datetime | None = None
    ) -> int:
        """An SMS arrives and is stored on the SIM; its storage index."""
        when = when or datetime(2024, 6, 19, 8, 30, tzinfo=VIETNAM)
        pdu = encode_deliver(sender, text, when, concat=concat)
        with self._lock:
            index = self._next_index
            self._next_index += 1
            self.inbox[index] = pdu
        return index

    def _call(self, action: Callable[[], None]) -> None:
        if not self._thread.is_alive():
            action()
            return
        done = threading.Event()
        self._requests.put((action, done))
        if not done.wait(2):
            raise TimeoutError("modem simulator thread did not respond")

    # -- the modem (its thread) ---------------------------------------------------------------

    def _reboot(self) -> None:
        self.echo = True
        self.mode = "pdu"
        self.unlocked = self.pin is None
        self.puk_locked = False
        self._command = bytearray()
        self._body: bytearray | None = None  # not None: at the "> " prompt
        self._cmgs: tuple[str, int | str] | None = None

    def _plug(self) -> None:
        if self.plugged:
            return
        master, slave = pty.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.port)
        os.symlink(os.ttyname(slave), self.port)
        self._reboot()
        self.plugged = True

    def _unplug(self) -> None:
        if not self.plugged:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.port)
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        self.plugged = False

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Empty):
                while True:
                    action, done = self._requests.get_nowait()
                    action()
                    done.set()
            if self._master is None:
                time.sleep(0.01)
                continue
            ready, _, _ = select.select([self._master], [], [], 0.01)
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                time.sleep(0.01)  # nobody has the port open
                continue
            for byte in data:
                self._byte(byte)

    def _write(self, data: bytes) -> None:
        deadline = time.monotonic() + 1
        while data and self._master is not None and time.monotonic() < deadline:
            try:
                data = data[os.write(self._master, data) :]
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EIO):
                    raise
                time.sleep(0.005)

    def _answer(self, *lines: str) -> None:
        self._write(b"".join(b"\r\n" + line.encode("latin-1") + b"\r\n" for line in lines))

    def _byte(self, byte: int) -> None:
        if self._body is not None:  # at the prompt: message text up to Ctrl-Z, ESC cancels
            if byte == 0x1A:
                body, self._body = bytes(self._body), None
                self._submitted(body)
            elif byte == 0x1B:
                self._body = None
            else:
                self._body.append(byte)
            return
        if self.echo and not self.hang:
            self._write(bytes([byte]))
        if byte == 0x0D:
            line = self._command.decode("latin-1").strip()
            self._command.clear()
            if line:
                self._line(line)
        elif byte not in (0x0A, 0x1B):
            self._command.append(byte)

    def _fault(self, line: str) -> str | None:
        with self._lock:
            for prefix, answers in self._faults.items():
                if line.upper().startswith(prefix) and answers:
                    return answers.pop(0)  # None: this one passes
        return None

    def _line(self, line: str) -> None:
        self.commands.append(line)
        if self.hang:
            return
        upper = line.upper()
        if not upper.startswith("AT+CMGS") and (fault := self._fault(line)) is not None:
            self._answer(fault)
            return
        handler = self._handler(upper)
        if handler is None:
            self._answer("ERROR")
        else:
            handler(line)

    def _handler(self, upper: str) -> Callable[[str], None] | None:
        for pattern, handler in (
            (r"AT", self._ok),
            (r"ATE[01]", self._echo),
            (r"AT\+CMEE=\d", self._ok),
            (r"AT\+CPIN\?", self._cpin_query),
            (r'AT\+CPIN="?\d+"?', self._cpin),
            (r"AT\+CMGF=[01]", self._cmgf),
            (r'AT\+CSCS=".*"', self._ok),
            (r"AT\+CNMI=[\d,]+", self._ok),
            (r"AT\+CMGS=.+", self._cmgs_start),
            (r"AT\+CMGL(=.*)?", self._cmgl),
            (r"AT\+CMGD=\d+(,\d)?", self._cmgd),
        ):
            if re.fullmatch(pattern, upper):
                return handler
        return None

    def _ok(self, line: str) -> None:
        self._answer("OK")

    def _echo(self, line: str) -> None:
        self.echo = line.endswith("1")
        self._answer("OK")

    def _cpin_query(self, line: str) -> None:
        state = "SIM PUK" if self.puk_locked else "READY" if self.unlocked else "SIM PIN"
        self._answer(f"+CPIN: {state}", "OK")

    def _cpin(self, line: str) -> None:
        given = line.split("=", 1)[1].strip('"')
        self.pin_attempts.append(given)
        if self.puk_locked:
            self._answer("+CME ERROR: 12")
        elif given == self.pin:
            self.unlocked = True
            self._answer("OK")
        else:
            self.puk_locked = len(self.pin_attempts) >= 3
            self._answer("+CME ERROR: 16")

    def _cmgf(self, line: str) -> None:
        self.mode = "pdu" if line.endswith("0") else "text"
        self._answer("OK")

    def _cmgs_start(self, line: str) -> None:
        if not self.unlocked:
            self._answer("+CMS ERROR: 311")
            return
        argument = line.split("=", 1)[1]
        if self.mode == "pdu":
            if not argument.isdigit():
                self._answer("+CMS ERROR: 304")
                return
            self._cmgs = ("pdu", int(argument))
        else:
            self._cmgs = ("text", argument.split(",")[0].strip('"'))
        self._body = bytearray()
        self._write(b"\r\n> ")

    def _submitted(self, body: bytes) -> None:
        assert self._cmgs is not None
        (mode, argument), self._cmgs = self._cmgs, None
        if (fault := self._fault("AT+CMGS")) is not None:
            self._answer(fault)
            return
        reference = self._next_reference
        if mode == "pdu":
            try:
                octets = bytes.fromhex(body.decode("ascii"))
                if len(octets) - 1 - octets[0] != argument:
                    raise PduError(f"AT+CMGS={argument} but the TPDU has {len(octets) - 1} octets")
                message = decode(body.decode("ascii"))
            except (PduError, ValueError, IndexError):
                self._answer("+CMS ERROR: 304")
                return
            record = Submitted(
                message.number, message.text, message.encoding, message.concat, "pdu", reference
            )
        else:
            record = Submitted(
                str(argument), body.decode("latin-1"), "gsm7", None, "text", reference
            )
        with self._lock:
            self.sent.append(record)
        self._next_reference = (reference + 1) % 256
        self._answer(f"+CMGS: {reference}", "OK")

    def _cmgl(self, line: str) -> None:
        with self._lock:
            stored = sorted(self.inbox.items())
        lines: list[str] = []
        for index, pdu in stored:
            if self.mode == "pdu":
                lines += [f"+CMGL: {index},0,,{len(pdu) // 2 - 1}", pdu]
            else:
                message = decode(pdu)
                assert message.timestamp is not None
                when = message.timestamp.strftime("%y/%m/%d,%H:%M:%S+28")
                lines += [f'+CMGL: {index},"REC UNREAD","{message.number}",,"{when}"']
                lines += message.text.split("\n")
        self._write(b"".join(b"\r\n" + x.encode("latin-1", "replace") for x in lines) + b"\r\n")
        self._answer("OK")

    def _cmgd(self, line: str) -> None:
        index = int(line.split("=", 1)[1].split(",")[0])
        with self._lock:
            self.inbox.pop(index, None)
            self.deleted.append(index)
        self._answer("OK")
