"""E.164 phone numbers."""

from __future__ import annotations

import re

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def is_e164(value: str) -> bool:
    """Whether the value is an E.164 number such as +15550000001."""
    return bool(E164.match(value))


def from_query(value: str) -> str:
    """A phone number from a query string, repairing an unencoded "+" decoded as a space."""
    value = value.strip()
    return value if value.startswith("+") else "+" + value
