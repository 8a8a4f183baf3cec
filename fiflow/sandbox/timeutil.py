"""Timestamps in the formats the sandbox's callers expect."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime


def iso_now() -> str:
    """Now in UTC, ISO 8601 with a Z suffix."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def rfc2822(moment: datetime) -> str:
    """A UTC moment as Twilio writes dates ("Tue, 25 Nov 2025 06:37:00 +0000")."""
    return format_datetime(moment.astimezone(UTC))
