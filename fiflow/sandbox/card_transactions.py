"""Recent card transactions, generated per card and calendar day from the seed.

A day's transactions derive from (seed, customer, card, date) alone, so a transaction keeps
its ID, time and amount as the sandbox's date advances: tomorrow's window drops the oldest
day, adds today's, and leaves the rest unchanged. The window is the whole days before
today: including today's purchases as the clock passes them would change the answer
between two identical calls.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from fiflow.sandbox.seed import Customer

WINDOW_DAYS = 30
# Every card has at least one purchase every this many days, so any 30-day window has 3+.
MAX_GAP_DAYS = 10
# Purchases per card per day and how often each count happens (weights).
DAILY_COUNTS = (0, 1, 2, 3)
DAILY_WEIGHTS = (45, 35, 15, 5)


@dataclass(frozen=True)
class Merchant:
    """Where cards are used, with a plausible ticket size there."""

    name: str
    low: float
    high: float
    weight: int  # how common a purchase there is, relative to the others


MERCHANTS = (
    Merchant("Starbucks", 3.25, 18.0, 10),
    Merchant("Dunkin'", 3.0, 14.0, 6),
    Merchant("McDonald's", 4.0, 25.0, 6),
    Merchant("Chipotle Mexican Grill", 9.0, 38.0, 5),
    Merchant("Whole Foods Market", 12.0, 240.0, 6),
    Merchant("Trader Joe's", 10.0, 160.0, 5),
    Merchant("Safeway", 8.0, 210.0, 5),
    Merchant("Costco Wholesale", 45.0, 620.0, 3),
    Merchant("Target", 8.0, 320.0, 5),
    Merchant("Walmart Supercenter", 6.0, 280.0, 5),
    Merchant("Amazon.com", 7.0, 450.0, 8),
    Merchant("Shell", 25.0, 95.0, 4),
    Merchant("Chevron", 25.0, 95.0, 4),
    Merchant("Uber", 8.0, 65.0, 5),
    Merchant("Lyft", 8.0, 60.0, 3),
    Merchant("Netflix", 9.99, 22.99, 1),
    Merchant("Spotify", 10.99, 16.99, 1),
    Merchant("Apple.com/bill", 3.0, 30.0, 2),
    Merchant("CVS Pharmacy", 5.0, 85.0, 4),
    Merchant("Walgreens", 5.0, 70.0, 3),
    Merchant("The Home Depot", 15.0, 900.0, 2),
    Merchant("Best Buy", 25.0, 2500.0, 1),
    Merchant("Delta Air Lines", 120.0, 1450.0, 1),
    Merchant("Marriott Hotels", 140.0, 980.0, 1),
    Merchant("Airbnb", 90.0, 1600.0, 1),
)
MERCHANT_WEIGHTS = tuple(m.weight for m in MERCHANTS)


@dataclass(frozen=True)
class CardTransaction:
    """One card purchase."""

    transaction_id: str
    card_last4: str
    amount: float
    currency: str
    merchant: str
    occurred_at: datetime

    def view(self) -> dict[str, Any]:
        """The core banking API's shape of it."""
        return {
            "transaction_id": self.transaction_id,
            "card_last4": self.card_last4,
            "amount": self.amount,
            "currency": self.currency,
            "merchant": self.merchant,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
        }


def _phase(seed: int, customer_id: str, last4: str) -> int:
    # Which day of each MAX_GAP_DAYS-day cycle the card is always used on.
    return random.Random(f"{seed}:card-phase:{customer_id}:{last4}").randrange(MAX_GAP_DAYS)


# Cached: benchmarks read transactions at high rates and a day never changes.
@lru_cache(maxsize=8192)
def day_transactions(
    seed: int, customer_id: str, last4: str, currency: str, day: date
) -> tuple[CardTransaction, ...]:
    """One card's purchases on one UTC calendar day."""
    rng = random.Random(f"{seed}:card-transactions:{customer_id}:{last4}:{day.isoformat()}")
    count = rng.choices(DAILY_COUNTS, DAILY_WEIGHTS)[0]
    if count == 0 and day.toordinal() % MAX_GAP_DAYS == _phase(seed, customer_id, last4):
        count = 1
    found = []
    for _ in range(count):
        merchant = rng.choices(MERCHANTS, MERCHANT_WEIGHTS)[0]
        at = datetime.combine(day, time(), tzinfo=UTC) + timedelta(seconds=rng.randrange(86400))
        found.append(
            CardTransaction(
                transaction_id=f"txn-{rng.getrandbits(64):016x}",
                card_last4=last4,
                amount=round(rng.uniform(merchant.low, merchant.high), 2),
                currency=currency,
                merchant=merchant.name,
                occurred_at=at,
            )
        )
    return tuple(found)


def recent_transactions(
    seed: int, customer: Customer, today: date, card_last4: str | None, limit: int
) -> list[CardTransaction]:
    """The newest `limit` purchases of the 30 days before `today`, optionally of one card."""
    currencies = {a.account_id: a.currency for a in customer.accounts}
    found = [
        transaction
        for card in customer.cards
        if card_last4 is None or card.last4 == card_last4
        for back in range(1, WINDOW_DAYS + 1)
        for transaction in day_transactions(
            seed,
            customer.customer_id,
            card.last4,
            currencies[card.account_id],
            today - timedelta(days=back),
        )
    ]
    found.sort(key=lambda t: (t.occurred_at, t.transaction_id), reverse=True)
    return found[:limit]
