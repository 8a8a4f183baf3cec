"""Credit application pre-fills: what fiflow can fill in before the customer applies.

A pre-fill pulls no credit (that needs the applicant's consent, given when they apply): it
proposes the product, an amount the product's rules allow and the relationship facts the
bank already holds, for the channel to put in front of the customer.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal

from pydantic import BaseModel

from fiflow.domain.credit import HistorySummary, Product
from fiflow.domain.credit_rules import ProductRules

HUNDRED = Decimal(100)


class CreditPrefillInput(BaseModel):
    """The single argument of CreditPrefillWorkflow."""

    prefill_id: str
    customer_id: str
    product: Product
    interaction_id: str | None = None
    requested_at: datetime


class CreditPrefill(BaseModel):
    """A pre-filled application, ready for the customer to review, consent and submit."""

    prefill_id: str
    customer_id: str
    product: Product
    rule_set_version: str
    suggested_amount: Decimal
    term_months: int | None
    customer_since: date | None
    tenure_months: int | None
    history_available: bool
    prepared_at: datetime


def suggest_amount(rules: ProductRules, history: HistorySummary | None) -> Decimal:
    """Three months of the customer's average balance, within the product's limits.

    Only a starting point the customer changes freely; the decision comes from the full
    application's rules.
    """
    floor, ceiling = rules.amount.min, rules.amount.max
    if history is None or history.average_balance <= 0:
        return floor
    proposal = (history.average_balance * 3 / HUNDRED).to_integral_value(ROUND_DOWN) * HUNDRED
    return min(max(proposal, floor), ceiling)


class PrefillStatus(BaseModel):
    """A pre-fill being prepared, or ready; also CreditPrefillWorkflow's result."""

    prefill_id: str
    state: str = "preparing"  # preparing | ready
    prefill: CreditPrefill | None = None
