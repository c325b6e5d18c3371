"""SMS PDUs (3GPP TS 23.040 §9.2): SMS-SUBMIT to send through a modem, SMS-DELIVER to read replies.

PDU mode is the one way to send UCS-2 (Vietnamese) and concatenated messages through a GSM
modem portably; text mode leaves both to each vendor's firmware. Written here rather than taken
from PyPI: python-gsmmodem-new 0.13 (``gsmmodem.pdu``) is Python-2-era code that crashes on
characters outside the BMP (no surrogate pairs), has "`" where TS 23.038 has "§" (0x5F), and
brings a whole threaded modem stack; smspdudecoder 2.2 only decodes and needs bitstring and
pytz. The texts are split by :func:`alerting.smstext.split`, so what is charged is what is sent.

Scope: GSM-7 (packed septets) and UCS-2; concatenation with the 8-bit reference IE 0x00 when
sending, 8- or 16-bit (IE 0x08) when reading; relative validity period; 8-bit data is read as
Latin-1. No status reports, no national language shift tables, no compressed text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from alerting.smstext import ESCAPE, GSM7_BASIC, GSM7_EXTENSION, is_gsm7, split


class PduError(ValueError):
    """A PDU that cannot be built (bad number, unencodable text) or parsed."""


@dataclass(frozen=True)
class Concat:
    """A part of a concatenated message (TS 23.040 §9.2.3.24.1): reference, parts, this part."""

    ref: int
    total: int
    seq: int


@dataclass(frozen=True)
class SubmitPdu:
    """One SMS-SUBMIT ready for ``AT+CMGS=<length>``; the SMSC comes from the SIM ("00")."""

    hex: str
    length: int  # octets of the TPDU, i.e. everything after the SMSC field


@dataclass(frozen=True)
class Message:
    """A decoded SMS-DELIVER (a reply: number is the sender) or SMS-SUBMIT (number: recipient)."""

    kind: Literal["deliver", "submit"]
    number: str
    text: str
    encoding: Literal["gsm7", "ucs2", "8bit"]
    concat: Concat | None = None
    timestamp: datetime | None = None  # the service centre's, on SMS-DELIVER
    smsc: str | None = None


_NUMBER = re.compile(r"\+?\d{1,20}")
_SEPTET = {c: i for i, c in enumerate(GSM7_BASIC) if i != ESCAPE}
_EXTENDED = {v: k for k, v in GSM7_EXTENSION.items()}
_DIGITS = "0123456789*#abc"  # TS 24.008 BCD; 0xF is the filler


# -- text <-> septets -------------------------------------------------------------------------


def _septets(text: str) -> list[int]:
    out: list[int] = []
    for c in text:
        if c in GSM7_EXTENSION:
            out += (ESCAPE, GSM7_EXTENSION[c])
        elif c in _SEPTET:
            out.append(_SEPTET[c])
        else:
            raise PduError(f"{c!r} is not in the GSM 7-bit alphabet")
    return out


def _gsm_text(septets: list[int]) -> str:
    out: list[str] = []
    escaped = False
    for s in septets:
        if escaped:
            # TS 23.038: an unknown extension code shows as the default table's character.
            out.append(_EXTENDED.get(s, " " if s == ESCAPE else GSM7_BASIC[s]))
            escaped = False
        elif s == ESCAPE:
            escaped = True
        else:
            out.append(GSM7_BASIC[s])
    return "".join(out)


def _pack(septets: list[int], fill: int = 0) -> bytes:
    """Septets packed LSB first (TS 23.038 §6.1.2.1.1), after *fill* zero bits."""
    acc, bits, out = 0, fill, bytearray()
    for s in septets:
        acc |= s << bits
        bits += 7
        while bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc & 0xFF)
    return bytes(out)


def _unpack(data: bytes, count: int) -> list[int]:
    acc = int.from_bytes(data, "little")
    return [(acc >> (7 * i)) & 0x7F for i in range(min(count, len(data) * 8 // 7))]


# -- fields -----------------------------------------------------------------------------------


def _address(number: str) -> bytes:
    """TP-DA/TP-OA: digit count, type of address (0x91 international, 0x81 other), BCD."""
    if not _NUMBER.fullmatch(number):
        raise PduError(f"not a phone number: {number!r} (digits, optionally after '+')")
    digits = number.lstrip("+")
    toa = 0x91 if number.startswith("+") else 0x81
    padded = digits + "F" * (len(digits) % 2)
    bcd = bytes(int(padded[i + 1] + padded[i], 16) for i in range(0, len(padded), 2))
    return bytes([len(digits), toa]) + bcd


def _semi_octets(raw: bytes) -> str:
    nibbles = (n for b in raw for n in (b & 0x0F, b >> 4))
    return "".join(_DIGITS[n] for n in nibbles if n != 0x0F)


def _read_address(data: bytes, pos: int) -> tuple[str, int]:
    count, toa = data[pos], data[pos + 1]
    octets = (count + 1) // 2
    raw = data[pos + 2 : pos + 2 + octets]
    if len(raw) < octets:
        raise PduError("PDU is truncated in an address")
    if toa & 0x70 == 0x50:  # alphanumeric sender ("Viettel"): GSM-7 in semi-octet count
        number = _gsm_text(_unpack(raw, count * 4 // 7))
    else:
        number = ("+" if toa & 0x70 == 0x10 else "") + _semi_octets(raw)[:count]
    return number, pos + 2 + octets


def _relative_validity(period: timedelta) -> int:
    """TP-VP, relative format (TS 23.040 §9.2.3.12.1): the shortest period not below *period*."""
    minutes = period.total_seconds() / 60
    if minutes <= 0:
        raise PduError("validity period must be positive")
    if minutes <= 12 * 60:
        return max(0, math.ceil(minutes / 5) - 1)
    if minutes <= 24 * 60:
        return 143 + math.ceil((minutes - 12 * 60) / 30)
    days = minutes / (24 * 60)
    if days <= 30:
        return 166 + math.ceil(days)
    return min(255, 192 + math.ceil(days / 7))


def _timestamp(raw: bytes) -> datetime | None:
    """TP-SCTS (TS 23.040 §9.2.3.11); None if the service centre sent an impossible date."""

    def bcd(b: int) -> int:
        return (b & 0x0F) * 10 + (b >> 4)

    quarters = (raw[6] & 0x07) * 10 + (raw[6] >> 4)
    if raw[6] & 0x08:
        quarters = -quarters
    try:
        year, month, day, hour, minute, second = (bcd(b) for b in raw[:6])
        zone = timezone(timedelta(minutes=15 * quarters))
        return datetime(2000 + year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError:
        return None


def _encode_timestamp(when: datetime) -> bytes:
    offset = when.utcoffset()
    if offset is None:
        raise PduError("timestamp needs a time zone")
    quarters = int(offset.total_seconds() // 900)
    fields = [when.year % 100, when.month, when.day, when.hour, when.minute, when.second]
    out = bytes((v % 10) << 4 | v // 10 for v in fields)
    tz = abs(quarters)
    return out + bytes([(tz % 10) << 4 | tz // 10 | (0x08 if quarters < 0 else 0)])


def _alphabet(dcs: int) -> Literal["gsm7", "ucs2", "8bit"]:
    """The character set a TP-DCS announces (TS 23.038 §4); reserved codings mean GSM-7."""
    group = dcs >> 4
    if group < 0x8:
        if dcs & 0x20:
            raise PduError("compressed text is not supported")
        return ("gsm7", "8bit", "ucs2", "gsm7")[(dcs >> 2) & 0x03]
    if group == 0xE:
        return "ucs2"
    if group == 0xF:
        return "8bit" if dcs & 0x04 else "gsm7"
    return "gsm7"


# -- user data --------------------------------------------------------------------------------


def _user_data(text: str, encoding: str, concat: Concat | None) -> tuple[int, bytes]:
    """(TP-UDL, TP-UD): UDL counts septets in GSM-7 (header and fill bits included), octets
    in UCS-2."""
    udh = b"" if concat is None else bytes([5, 0x00, 3, concat.ref, concat.total, concat.seq])
    if encoding == "gsm7":
        septets = _septets(text)
        fill = (7 - len(udh) * 8 % 7) % 7  # so the text starts on a septet boundary
        return (len(udh) * 8 + fill) // 7 + len(septets), udh + _pack(septets, fill)
    data = text.encode("utf-16-be")
    return len(udh) + len(data), udh + data


def _concat(header: bytes) -> Concat | None:
    pos = 0
    while pos + 2 <= len(header):
        iei, size = header[pos], header[pos + 1]
        value = header[pos + 2 : pos + 2 + size]
        if iei == 0x00 and size == 3 and len(value) == 3:
            return Concat(value[0], value[1], value[2])
        if iei == 0x08 and size == 4 and len(value) == 4:
            return Concat(value[0] << 8 | value[1], value[2], value[3])
        pos += 2 + size
    return None


def _user_text(ud: bytes, udl: int, encoding: str, udhi: bool) -> tuple[str, Concat | None]:
    header, concat = 0, None
    if udhi:
        header = ud[0] + 1
        concat = _concat(ud[1:header])
    if encoding == "gsm7":
        return _gsm_text(_unpack(ud, udl)[(header * 8 + 6) // 7 :]), concat
    body = ud[header:udl]
    if encoding == "ucs2":
        return body.decode("utf-16-be", errors="replace"), concat
    return body.decode("latin-1"), concat


# -- public -----------------------------------------------------------------------------------


def encode_submit(
    number: str, text: str, *, concat_ref: int = 0, validity: timedelta | None = None
) -> list[SubmitPdu]:
    """The SMS-SUBMIT PDUs that send *text* to *number*: one, or one per concatenated part.

    GSM-7 when the text allows it, else UCS-2; parts as :func:`alerting.smstext.split` cuts
    them, all carrying *concat_ref* (0-255) so the phone joins them. TP-MR is 0: the modem
    assigns message references and reports them in ``+CMGS: <mr>``.
    """
    encoding, parts = split(text)
    if len(parts) > 255:
        raise PduError(f"text needs {len(parts)} parts; at most 255 can be concatenated")
    destination = _address(number)
    vp = b"" if validity is None else bytes([_relative_validity(validity)])
    first = 0x01 | (0x10 if vp else 0) | (0x40 if len(parts) > 1 else 0)  # SUBMIT, VPF, UDHI
    dcs = 0x00 if encoding == "gsm7" else 0x08
    out = []
    for seq, part in enumerate(parts, 1):
        concat = Concat(concat_ref & 0xFF, len(parts), seq) if len(parts) > 1 else None
        udl, ud = _user_data(part, encoding, concat)
        tpdu = bytes([first, 0x00]) + destination + bytes([0x00, dcs]) + vp + bytes([udl]) + ud
        out.append(SubmitPdu(("00" + tpdu.hex()).upper(), len(tpdu)))
    return out


def encode_deliver(
    sender: str, text: str, timestamp: datetime, *, concat: Concat | None = None
) -> str:
    """An SMS-DELIVER as a modem stores a received SMS: for simulators and tests."""
    encoding = "gsm7" if is_gsm7(text) else "ucs2"
    udl, ud = _user_data(text, encoding, concat)
    if len(ud) > 140:
        raise PduError("text does not fit one SMS-DELIVER")
    first = 0x04 | (0x40 if concat else 0)  # DELIVER, no more messages to send, UDHI
    dcs = 0x00 if encoding == "gsm7" else 0x08
    tpdu = bytes([first]) + _address(sender) + bytes([0x00, dcs])
    tpdu += _encode_timestamp(timestamp) + bytes([udl]) + ud
    return ("00" + tpdu.hex()).upper()


def decode(pdu: str) -> Message:
    """An SMS-DELIVER or SMS-SUBMIT PDU (hex, with its SMSC field) as a :class:`Message`."""
    try:
        data = bytes.fromhex(pdu.strip())
    except ValueError as exc:
        raise PduError(f"PDU is not hex: {exc}") from exc
    try:
        return _decode(data)
    except IndexError:
        raise PduError("PDU is truncated") from None


def _decode(data: bytes) -> Message:
    smsc_octets = data[0]
    smsc = None
    if smsc_octets:
        toa, raw = data[1], data[2 : 1 + smsc_octets]
        smsc = ("+" if toa & 0x70 == 0x10 else "") + _semi_octets(raw)
    pos = 1 + smsc_octets
    first = data[pos]
    pos += 1
    timestamp = None
    if first & 0x03 == 0x00:
        kind: Literal["deliver", "submit"] = "deliver"
        number, pos = _read_address(data, pos)
        dcs = data[pos + 1]
        timestamp = _timestamp(data[pos + 2 : pos + 9])
        pos += 9
    elif first & 0x03 == 0x01:
        kind = "submit"
        number, pos = _read_address(data, pos + 1)  # after TP-MR
        dcs = data[pos + 1]
        pos += 2 + {0: 0, 2: 1, 1: 7, 3: 7}[(first >> 3) & 0x03]  # TP-VP by its format
    else:
        raise PduError(f"not an SMS-DELIVER or SMS-SUBMIT (TP-MTI {first & 0x03})")
    encoding = _alphabet(dcs)
    udl = data[pos]
    text, concat = _user_text(data[pos + 1 :], udl, encoding, bool(first & 0x40))
    return Message(kind, number, text, encoding, concat, timestamp, smsc)
