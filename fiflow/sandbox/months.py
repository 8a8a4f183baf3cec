"""Calendar-month arithmetic for statements and customer tenures."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime


def utc_today() -> date:
    """Today's date in UTC."""
    return datetime.now(UTC).date()


def add_months(day: date, months: int) -> date:
    """The same day `months` later (earlier if negative), clamped to the month's end."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def last_complete_month(today: date) -> date:
    """The first day of the calendar month before `today`'s."""
    return add_months(today.replace(day=1), -1)


def month_label(day: date) -> str:
    """The month a date falls in, as "YYYY-MM"."""
    return f"{day.year:04d}-{day.month:02d}"


def parse_month_label(label: str) -> date:
    """The first day of a "YYYY-MM" month; ValueError if it is not one."""
    if len(label) != 7 or label[4] != "-":
        raise ValueError(f"not a YYYY-MM month: {label!r}")
    return date(int(label[:4]), int(label[5:]), 1)
