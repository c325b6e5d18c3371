"""What an SMS text costs and how to make it cheaper: pure functions, no I/O.

An SMS part carries 140 octets. Text that uses only the GSM 03.38 default alphabet (3GPP TS
23.038 §6.2.1, plus its basic extension table, whose characters take an escape septet too) is
packed seven bits per character: 160 characters, or 153 per part once a long message needs the
6-octet concatenation header. One character outside it - a Vietnamese "ả", a "µ" - switches the
whole message to UCS-2: 70 UTF-16 code units, 67 per part. A Vietnamese alert therefore costs
two to three times as many parts as the same alert without diacritics, which is why the
alerting templates offer :func:`unaccent` and :func:`sms_units`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

Encoding = Literal["gsm7", "ucs2"]

# 3GPP TS 23.038 §6.2.1, row by row (0x00-0x7F). 0x1B is the escape to the extension table,
# not a character, so it is excluded from the set of encodable characters below.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
ESCAPE = 0x1B
# 3GPP TS 23.038 §6.2.1.1, the default extension table: each costs ESC + this septet.
GSM7_EXTENSION: dict[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
_BASIC = frozenset(GSM7_BASIC) - {"\x1b"}

SINGLE = {"gsm7": 160, "ucs2": 70}  # septets / UTF-16 code units in a lone SMS
PER_PART = {"gsm7": 153, "ucs2": 67}  # ... in each part of a concatenated SMS


def is_gsm7(text: str) -> bool:
    """True if *text* fits the GSM 7-bit default alphabet (with the extension table)."""
    return all(c in _BASIC or c in GSM7_EXTENSION for c in text)


def _cost(c: str, encoding: Encoding) -> int:
    if encoding == "gsm7":
        return 2 if c in GSM7_EXTENSION else 1
    return 2 if ord(c) > 0xFFFF else 1  # astral characters are a UTF-16 surrogate pair


def split(text: str) -> tuple[Encoding, list[str]]:
    """The encoding and the parts *text* is sent as; the PDU encoder sends exactly these.

    An escape pair or a surrogate pair is never cut across two parts (a phone would show
    garbage), so a part may hold one unit less than the maximum.
    """
    encoding: Encoding = "gsm7" if is_gsm7(text) else "ucs2"
    if sum(_cost(c, encoding) for c in text) <= SINGLE[encoding]:
        return encoding, [text]
    parts: list[str] = []
    start, used = 0, 0
    for i, c in enumerate(text):
        cost = _cost(c, encoding)
        if used + cost > PER_PART[encoding]:
            parts.append(text[start:i])
            start, used = i, 0
        used += cost
    parts.append(text[start:])
    return encoding, parts


def segments(text: str) -> tuple[Encoding, int]:
    """("gsm7" | "ucs2", number of SMS parts): what sending *text* costs."""
    encoding, parts = split(text)
    return encoding, len(parts)


# Characters NFKD leaves alone that have an obvious GSM-7 stand-in.
_REPLACE = str.maketrans(
    {
        "đ": "d",
        "Đ": "D",
        "µ": "u",
        "μ": "u",
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "«": '"',
        "»": '"',
        "‐": "-",
        "‑": "-",
        "‒": "-",
        "–": "-",
        "—": "-",
        "―": "-",
        "−": "-",
        "•": "*",
        "·": ".",
        "×": "x",
        "÷": "/",
        "⁄": "/",
        "°": "o",
        "`": "'",
        "\t": " ",
        "\u2028": "\n",
        "\u2029": "\n",
        "≤": "<=",
        "≥": ">=",
        "≠": "!=",
        "±": "+/-",
        "→": "->",
        "←": "<-",
    }
)


def unaccent(text: str) -> str:
    """*text* in the GSM 7-bit alphabet: "Cảnh báo Đông Triều" -> "Canh bao Dong Trieu".

    Vietnamese written without diacritics is what people in Vietnam are used to reading in
    SMS, and it costs a third of the parts. NFKD splits letters from their tone and vowel
    marks (and "…" into "..."), but has no decomposition for đ/Đ, so those are mapped by
    hand, like µ/μ (-> u) and typographic punctuation. Other control characters are dropped;
    anything still not encodable (CJK, emoji) becomes "?" so the reader sees that something
    was there.
    """
    out: list[str] = []
    for c in unicodedata.normalize("NFKD", text.translate(_REPLACE)).translate(_REPLACE):
        category = unicodedata.category(c)
        if category.startswith("M"):
            continue  # a combining tone or vowel mark
        if c in _BASIC or c in GSM7_EXTENSION:
            out.append(c)
        elif category in ("Cc", "Cf"):
            continue  # control and format characters: nothing to show
        elif category == "Zs":
            out.append(" ")
        else:
            out.append("?")
    return "".join(out)


_MICRO = re.compile(r"[µμ](?=[A-Za-z])")
_PER_HOUR = re.compile(r"(?<=Sv|Gy)\s*[·⋅]?\s*h⁻¹")


def sms_units(text: str) -> str:
    """Units spelt in GSM-7: "µSv/h" -> "uSv/h", "μGy·h⁻¹" -> "uGy/h".

    One micro sign would otherwise turn an all-ASCII alert into UCS-2 and halve what fits.
    """
    return _MICRO.sub("u", _PER_HOUR.sub("/h", text))


def fit(text: str, max_parts: int) -> str:
    """*text*, shortened if needed to at most *max_parts* parts of its own encoding.

    A shortened text ends with "..." in GSM-7 (U+2026 is not in the alphabet and would force
    UCS-2) or "…" in UCS-2, cut at a word boundary when one is near.
    """
    if max_parts < 1:
        raise ValueError("max_parts must be at least 1")
    encoding, parts = segments(text)
    if parts <= max_parts:
        return text
    ellipsis = "..." if encoding == "gsm7" else "…"

    def fits(n: int) -> bool:
        return segments(text[:n] + ellipsis)[1] <= max_parts

    low, high = 0, len(text)  # fits(low) holds: one part holds any ellipsis
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    head = text[:low]
    space = head.rfind(" ", max(0, low - 12))
    if space > 0 and low < len(text) and not text[low].isspace():
        head = head[:space]
    return head.rstrip() + ellipsis
