"""Summarising a customer's account history for a credit decision (pure)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from fiflow.domain.credit import CustomerSummary, HistorySummary, StatementRow

CENT = Decimal("0.01")


def months_between(start: date, end: date) -> int:
    """Whole calendar months from start to end (0 when end is before start)."""
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if end.day < start.day:
        months -= 1
    return max(months, 0)


def summarise_history(
    summary: CustomerSummary, rows: list[StatementRow], *, months: int, pages: int, as_of: date
) -> HistorySummary:
    """Tenure, balances, overdrafts and returned payments over the statement rows."""
    since = summary.customer_since
    if since is None:
        opened = [a.opened_on for a in summary.accounts if a.opened_on is not None]
        since = min(opened) if opened else None
    average = (
        (sum((r.average_balance for r in rows), Decimal(0)) / len(rows)).quantize(CENT)
        if rows
        else Decimal(0)
    )
    return HistorySummary(
        customer_since=since,
        tenure_months=months_between(since, as_of) if since else 0,
        accounts=len({r.account_id for r in rows} | {a.account_id for a in summary.accounts}),
        months=months,
        statement_rows=len(rows),
        pages=pages,
        average_balance=average,
        lowest_balance=min((r.lowest_balance for r in rows), default=Decimal(0)),
        overdraft_days=sum(r.overdraft_days for r in rows),
        overdraft_months=len({r.month for r in rows if r.overdraft_days > 0}),
        returned_payments=sum(r.returned_payments for r in rows),
    )
