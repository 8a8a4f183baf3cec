"""E.164 phone numbers, and the written forms people give them."""

from __future__ import annotations

import re

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
PUNCTUATION = re.compile(r"[\s().-]")


def is_e164(value: str) -> bool:
    """Whether the value is an E.164 number such as +12025550101."""
    return bool(E164.match(value))


def canonical(value: str) -> str:
    """An international number without its punctuation: "+1 202-555-0107" -> "+12025550107".

    How a CRM searches and how Twilio reports a sender: spaces, dashes, dots and brackets
    are presentation, the digits are the number. Anything else is left for checks to refuse.
    """
    return PUNCTUATION.sub("", value)


def from_query(value: str) -> str:
    """A phone number from a query string, canonical; an unencoded "+" arrives as a space."""
    value = canonical(value)
    return value if value.startswith("+") else "+" + value
