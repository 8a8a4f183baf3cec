"""Seeded credit profiles: what the bureau reports and what the core bank's history sums to.

The first six customers are fixed because tests and docs rely on them; the others are
drawn from the seed in tiers, so every seed has a realistic spread of scores (520..820)
and always a few strong customers with a clean history.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from fiflow.sandbox.months import add_months
from fiflow.sandbox.seed import customer_id

Tier = Literal["prime", "good", "fair", "subprime"]

# Per month at most: keeps the monthly rows plausible (a month has 28+ days).
MAX_RETURNED_PER_MONTH = 3
MAX_OVERDRAFT_DAYS_PER_MONTH = 15


@dataclass(frozen=True)
class CreditProfile:
    """One customer's credit file and banking-history totals."""

    customer_id: str
    tier: Tier
    score: int
    monthly_debt_payments: float
    open_tradelines: int
    delinquencies_24m: int
    tenure_months: int
    returned_payments_12m: int
    overdraft_days_12m: int
    base_inquiries: int

    def customer_since(self, today: date) -> date:
        """When the customer joined the bank, relative to the sandbox's today."""
        return add_months(today, -self.tenure_months)

    def view(self, today: date) -> dict[str, Any]:
        """The shape of `/__sandbox/credit-profiles`."""
        return {
            "customer_id": self.customer_id,
            "score": self.score,
            "monthly_debt_payments": self.monthly_debt_payments,
            "open_tradelines": self.open_tradelines,
            "delinquencies_24m": self.delinquencies_24m,
            "customer_since": self.customer_since(today).isoformat(),
            "returned_payments_12m": self.returned_payments_12m,
            "overdraft_days_12m": self.overdraft_days_12m,
        }


# number: (tier, score, monthly debt, tradelines, delinquencies_24m, tenure months,
#          returned payments 12m, overdraft days 12m, recent inquiries)
FIXED: dict[int, tuple[Tier, int, int, int, int, int, int, int, int]] = {
    1: ("prime", 780, 350, 6, 0, 72, 0, 0, 0),  # strong, long-standing, clean
    2: ("good", 705, 900, 5, 0, 48, 0, 0, 1),  # good, clean
    3: ("fair", 640, 600, 3, 0, 24, 0, 0, 2),  # fair, clean
    4: ("subprime", 560, 1500, 7, 2, 36, 2, 12, 4),  # weak: bounces and overdrafts
    5: ("prime", 760, 300, 4, 0, 60, 4, 0, 0),  # strong score, but returned payments
    6: ("prime", 750, 200, 1, 0, 3, 0, 0, 1),  # strong score, new customer, thin file
}


@dataclass(frozen=True)
class TierRanges:
    """Inclusive ranges a tier's customers are drawn from."""

    score: tuple[int, int]
    debt: tuple[int, int]
    tradelines: tuple[int, int]
    delinquencies: tuple[int, int]
    tenure: tuple[int, int]
    returned: tuple[int, int]
    overdraft: tuple[int, int]
    inquiries: tuple[int, int]


TIERS: dict[Tier, TierRanges] = {
    "prime": TierRanges((740, 820), (100, 900), (4, 12), (0, 0), (24, 180), (0, 0), (0, 0), (0, 1)),
    "good": TierRanges((670, 739), (200, 1400), (3, 10), (0, 1), (6, 180), (0, 1), (0, 4), (0, 2)),
    "fair": TierRanges((600, 669), (400, 1800), (2, 8), (0, 2), (4, 150), (0, 2), (0, 10), (1, 3)),
    "subprime": TierRanges(
        (520, 599), (600, 2500), (1, 7), (1, 4), (4, 120), (1, 5), (3, 25), (2, 5)
    ),
}
# The drawn customers 7..24 get these tiers in a seeded order (and again per further 18),
# so "several strong, clean customers" holds for every seed, not just the default one.
TIER_MIX: tuple[Tier, ...] = ("prime",) * 5 + ("good",) * 6 + ("fair",) * 4 + ("subprime",) * 3


def _fixed(number: int) -> CreditProfile:
    tier, score, debt, *counts = FIXED[number]
    return CreditProfile(customer_id(number), tier, score, float(debt), *counts)


def _drawn(seed: int, number: int, tier: Tier) -> CreditProfile:
    # One generator per customer: a profile does not shift when the customer count changes.
    rng = random.Random(f"{seed}:credit:{customer_id(number)}")
    ranges = TIERS[tier]

    def draw(bounds: tuple[int, int]) -> int:
        return rng.randint(*bounds)

    tenure = draw(ranges.tenure)
    months = min(12, tenure)
    return CreditProfile(
        customer_id=customer_id(number),
        tier=tier,
        score=draw(ranges.score),
        monthly_debt_payments=float(draw(ranges.debt) // 5 * 5),
        open_tradelines=draw(ranges.tradelines),
        delinquencies_24m=draw(ranges.delinquencies),
        tenure_months=tenure,
        returned_payments_12m=min(draw(ranges.returned), MAX_RETURNED_PER_MONTH * months),
        overdraft_days_12m=min(draw(ranges.overdraft), MAX_OVERDRAFT_DAYS_PER_MONTH * months),
        base_inquiries=draw(ranges.inquiries),
    )


def _tiers(seed: int, count: int) -> list[Tier]:
    rng = random.Random(f"{seed}:credit-tiers")
    tiers: list[Tier] = []
    while len(tiers) < count:
        block = list(TIER_MIX)
        rng.shuffle(block)
        tiers.extend(block)
    return tiers[:count]


# The canaries copy customers 1 and 3: one is approved outright, the other is referred.
CANARY_PROFILES = {"cust-canary-01": 1, "cust-canary-02": 3}


def build_profiles(seed: int = 7, count: int = 24) -> list[CreditProfile]:
    """One profile per seeded customer, in customer order, then the canaries'."""
    drawn = _tiers(seed, max(0, count - len(FIXED)))
    numbered = [
        _fixed(number) if number in FIXED else _drawn(seed, number, drawn[number - len(FIXED) - 1])
        for number in range(1, count + 1)
    ]
    canaries = [
        dataclasses.replace(_fixed(number), customer_id=cid)
        for cid, number in CANARY_PROFILES.items()
    ]
    return numbered + canaries
