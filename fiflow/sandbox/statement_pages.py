"""Paging through a customer's statements with opaque cursors.

A cursor remembers the month paging began in, so a caller that pages across a month
boundary still gets one consistent set of rows.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fiflow.sandbox.months import month_label, parse_month_label
from fiflow.sandbox.paging import decode_cursor, encode_cursor, invalid_cursor
from fiflow.sandbox.statements import History


def _resume(cursor: str, customer_id: str, months: int, latest: date) -> tuple[date, int]:
    fields = decode_cursor(cursor)
    if fields.get("customer_id") != customer_id or fields.get("months") != months:
        raise invalid_cursor("it was issued for another customer or number of months")
    offset = fields.get("offset")
    try:
        as_of = parse_month_label(str(fields.get("as_of")))
    except ValueError as exc:
        raise invalid_cursor("not a cursor issued by this system") from exc
    if as_of > latest or not isinstance(offset, int) or isinstance(offset, bool) or offset < 1:
        raise invalid_cursor("not a cursor issued by this system")
    return as_of, offset


def statement_page(
    history: History,
    customer_id: str,
    months: int,
    limit: int,
    cursor: str | None,
    latest: date,
) -> dict[str, Any]:
    """One page of the rows of the last `months` months ending with `latest`."""
    start = 0
    if cursor is not None:
        latest, start = _resume(cursor, customer_id, months, latest)
    rows = [r for r in history.rows if r.months_back < months]
    if start >= len(rows) and cursor is not None:
        raise invalid_cursor("it points past the last page")
    page = rows[start : start + limit]
    end = start + len(page)
    next_cursor = None
    if end < len(rows):
        next_cursor = encode_cursor(
            {
                "customer_id": customer_id,
                "months": months,
                "as_of": month_label(latest),
                "offset": end,
            }
        )
    return {"items": [r.view(latest) for r in page], "next_cursor": next_cursor}
