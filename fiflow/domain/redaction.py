"""Making outside error texts safe to keep: provider codes and messages without personal data.

Back-office systems and SMS providers echo their input in error messages ("The 'To' number
+12025550101 is not a valid phone number", "Customer 'Jane Doe' has no card ending 4242").
Such a text must not reach an exception, a Temporal failure, a log line or a stored report,
all of which outlive the request and are read by people who must not see customer data.
No pattern can recognise every name or merchant, so a provider's free text is never kept:
what survives is its error code (if it looks like a code), the HTTP status, and a message
fiflow chose. `scrub` is the second line for texts fiflow cannot avoid quoting (transport
errors from the HTTP library, which can quote URLs): it masks what looks like data.
"""

from __future__ import annotations

import re
import traceback
from http import HTTPStatus

# A provider's code is kept only if it looks like a code: an identifier or a number.
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
# Quoted values are what providers echo back ('+1202...', "Jane Doe").
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`|‘[^’]*’|“[^”]*”")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# URLs carry paths and query strings with customer IDs and phone numbers.
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
# Four or more digits, possibly split by the separators people type into numbers (phone
# numbers, card numbers, account numbers, amounts like 8,765.43).
_NUMBER = re.compile(r"\+?\d(?:[\d\s().,/-]*\d)?")
_MIN_DIGITS = 4
_LONG_DIGITS = re.compile(r"\d{6,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

MASK = "[redacted]"
MAX_LENGTH = 200


def safe_code(value: object) -> str:
    """A provider's error code if it looks like one (identifier or short number), else ""."""
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    # The code becomes part of a failure's type, which Temporal stores in clear: a "code"
    # that carries a long number (an echoed phone or card number) is not a code.
    if not _CODE.fullmatch(text) or _LONG_DIGITS.search(text):
        return ""
    return text


def status_phrase(status: int) -> str:
    """The standard reason phrase of an HTTP status (never the server's own, which is text)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown Status"


def scrub(text: str, limit: int = MAX_LENGTH) -> str:
    """Mask quoted values, URLs, e-mail addresses and numbers of four digits or more."""
    text = _CONTROL.sub(" ", text)
    text = _URL.sub(MASK, text)
    text = _QUOTED.sub(MASK, text)
    text = _EMAIL.sub(MASK, text)
    text = _NUMBER.sub(_mask_long_number, text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mask_long_number(match: re.Match[str]) -> str:
    number = match.group()
    return MASK if sum(c.isdigit() for c in number) >= _MIN_DIGITS else number


def provider_error(status: int | None, code: str) -> str:
    """The one-line description of a provider's error: status and code, no provider text."""
    parts = [f"HTTP {status} {status_phrase(status)}" if status is not None else "error"]
    if code:
        parts.append(f"code {code}")
    return ", ".join(parts)


def exception_summary(exc: BaseException) -> str:
    """An exception's type and scrubbed message, for errors raised by libraries we call."""
    message = scrub(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def safe_traceback(exc: BaseException) -> str:
    """A traceback with every exception's message scrubbed: where it failed, not with what."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "The above exception was the direct cause of:"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "During handling of the above, another occurred:"
        else:
            current = None
    lines: list[str] = []
    # Innermost first, like Python prints it.
    for i, (err, _) in enumerate(reversed(chain)):
        if i:
            lines.append(f"\n{chain[len(chain) - i][1]}\n\n")
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_tb(err.__traceback__))
        lines.append(exception_summary(err) + "\n")
    return "".join(lines).rstrip("\n")
