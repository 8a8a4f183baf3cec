"""Text from outside made safe for messages, and SMS segment counting (pure, no I/O).

Workflows call these in Temporal's sandbox: standard library only, deterministic.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

# Three dots, not "…": U+2026 is outside GSM-7 and would turn a whole SMS into UCS-2,
# cutting its capacity from 160 to 70 characters a segment.
ELLIPSIS = "..."
DEFAULT_SMS_MAX_SEGMENTS = 3

# Per-field caps for outside values that reach a customer's message.
MERCHANT_MAX = 40
SUMMARY_MAX = 60
SUBJECT_MAX = 80
REASON_MAX = 64
NOTE_MAX = 200

# Format characters (category Cf) that reorder or hide text: bidi embeddings, overrides and
# isolates, the directional marks, zero-width characters, the BOM. Other Cf characters
# (soft hyphen, say) are harmless but also dropped: a message has no use for any of them.
_HIDDEN = frozenset(
    "\u202a\u202b\u202c\u202d\u202e"  # LRE RLE PDF LRO RLO
    "\u2066\u2067\u2068\u2069"  # LRI RLI FSI PDI
    "\u200e\u200f\u061c"  # LRM RLM ALM
    "\u200b\u200c\u200d\u2060"  # zero-width space, non-joiner, joiner, word joiner
    "\ufeff"  # BOM / zero-width no-break space
)

# GSM 03.38: the basic table costs one septet, the extension table two (escape + char).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def clean_text(value: str, max_length: int | None = None) -> str:
    """Outside text made fit for a message: no hidden or control characters, one line, capped."""
    text = unicodedata.normalize("NFC", value)
    kept: list[str] = []
    for ch in text:
        if ch.isspace():
            # Every kind of whitespace (newline, tab, NBSP, ideographic space) is a space.
            kept.append(" ")
            continue
        category = unicodedata.category(ch)
        # Cs: a lone surrogate cannot even be encoded for sending.
        if category in ("Cc", "Cf", "Cs") or ch in _HIDDEN:
            continue
        kept.append(ch)
    text = " ".join("".join(kept).split())
    # Dropping a character can leave a combining mark next to a new base: normalise again.
    text = unicodedata.normalize("NFC", text)
    if max_length is not None:
        text = shorten(text, max_length)
    return text


def shorten(text: str, max_length: int) -> str:
    """The text cut to at most max_length characters, marked with an ellipsis when cut."""
    if max_length < 0:
        raise ValueError("max_length must not be negative")
    if len(text) <= max_length:
        return text
    if max_length <= len(ELLIPSIS):
        return text[:max_length]
    return text[: max_length - len(ELLIPSIS)].rstrip() + ELLIPSIS


class SmsEncoding(StrEnum):
    """How an SMS body travels."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True)
class SmsSegments:
    """What an SMS body costs: its encoding, its length in that encoding's units, its parts."""

    encoding: SmsEncoding
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def is_gsm7(text: str) -> bool:
    """Whether the text fits the GSM 03.38 alphabet (basic and extension tables)."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def sms_segments(text: str) -> SmsSegments:
    """How many segments the text takes as one SMS (an empty body still costs one)."""
    if is_gsm7(text):
        encoding, single, part = SmsEncoding.GSM7, GSM7_SINGLE, GSM7_PART
        sizes = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    else:
        encoding, single, part = SmsEncoding.UCS2, UCS2_SINGLE, UCS2_PART
        sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    units = sum(sizes)
    if units <= single:
        return SmsSegments(encoding, units, 1)
    # Concatenated parts never split an escape sequence or a surrogate pair, so a
    # two-unit character that does not fit the rest of a part starts the next one.
    segments, used = 1, 0
    for size in sizes:
        if used + size > part:
            segments += 1
            used = 0
        used += size
    return SmsSegments(encoding, units, segments)


def fit_sms(
    build: Callable[[dict[str, str]], str],
    values: Mapping[str, str],
    *,
    outside: Collection[str],
    max_segments: int = DEFAULT_SMS_MAX_SEGMENTS,
) -> str:
    """The SMS `build(values)` makes, within max_segments.

    Over the limit, the outside values (the variable part) are shortened first, longest
    first; only if the text is still too long with them emptied is the text itself cut.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")

    def fits(text: str) -> bool:
        return sms_segments(text).segments <= max_segments

    text = build(dict(values))
    if fits(text):
        return text
    names = [n for n in outside if values.get(n)]
    longest = max((len(values[n]) for n in names), default=0)
    # One cap for all outside values, lowered step by step: the longest give way first.
    for cap in range(longest - 1, -1, -1):
        text = build({k: shorten(v, cap) if k in names else v for k, v in values.items()})
        if fits(text):
            return text
    return _cut_to_fit(text, max_segments)


def _cut_to_fit(text: str, max_segments: int) -> str:
    """The longest ellipsis-marked prefix of text within max_segments."""
    low, high = 0, len(text)
    # Segments grow with the prefix length, so the longest prefix that fits is found by halving.
    while low < high:
        mid = (low + high + 1) // 2
        if sms_segments(shorten(text, mid)).segments <= max_segments:
            low = mid
        else:
            high = mid - 1
    return shorten(text, low)
