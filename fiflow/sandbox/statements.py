"""Monthly statement history of the seeded accounts, consistent with the credit profiles.

Rows are generated per customer from the seed, keyed by how many months back they lie
(0 = the last complete month), so the last 12 months always sum to the profile's
returned_payments_12m and overdraft_days_12m whatever the date. Returned payments and
overdraft days fall on the checking account. Balances are the customer's position: a
credit card's is negative (owed).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from typing import Any

from fiflow.sandbox.credit_profiles import (
    MAX_OVERDRAFT_DAYS_PER_MONTH,
    MAX_RETURNED_PER_MONTH,
    CreditProfile,
    Tier,
)
from fiflow.sandbox.months import add_months, month_label
from fiflow.sandbox.seed import Account

HISTORY_MONTHS = 36  # the most a caller may ask for

# Typical checking balance and monthly deposits per tier (dollars, inclusive ranges).
BALANCE = {
    "prime": (3000, 15000),
    "good": (1500, 6000),
    "fair": (600, 3000),
    "subprime": (100, 1200),
}
INCOME = {
    "prime": (5000, 12000),
    "good": (3500, 7000),
    "fair": (2500, 5000),
    "subprime": (1500, 3500),
}


@dataclass(frozen=True)
class StatementRow:
    """One account's month."""

    account_id: str
    months_back: int
    average_balance: float
    lowest_balance: float
    overdraft_days: int
    returned_payments: int
    deposits_total: float

    def view(self, latest: date) -> dict[str, Any]:
        """The API shape, with the month counted back from `latest`."""
        return {
            "account_id": self.account_id,
            "month": month_label(add_months(latest, -self.months_back)),
            "average_balance": self.average_balance,
            "lowest_balance": self.lowest_balance,
            "overdraft_days": self.overdraft_days,
            "returned_payments": self.returned_payments,
            "deposits_total": self.deposits_total,
        }


@dataclass(frozen=True)
class History:
    """A customer's statement rows (newest month first) and current balances."""

    rows: list[StatementRow]
    balances: dict[str, float]


def _spread(rng: random.Random, total: int, slots: int, cap: int) -> list[int]:
    """`total` events over `slots` months, at most `cap` in one month."""
    counts = [0] * slots
    for _ in range(min(total, cap * slots)):
        open_slots = [i for i, n in enumerate(counts) if n < cap]
        counts[rng.choice(open_slots)] += 1
    return counts


def _jitter(rng: random.Random, total: int) -> int:
    # Older years look like the last one: a clean customer stays clean.
    return 0 if total == 0 else rng.randint(max(0, total - 2), total + 2)


def _events(rng: random.Random, months: int, total_12m: int, cap: int) -> list[int]:
    counts: list[int] = []
    for start in range(0, months, 12):
        slots = min(12, months - start)
        total = total_12m if start == 0 else _jitter(rng, total_12m)
        counts.extend(_spread(rng, total, slots, cap))
    return counts


def _cents(value: float) -> float:
    return round(value, 2)


def _account_rows(
    rng: random.Random,
    account: Account,
    tier: Tier,
    returned: list[int],
    overdraft: list[int],
) -> tuple[list[StatementRow], float]:
    typical = rng.uniform(*BALANCE[tier])
    income = rng.uniform(*INCOME[tier])
    if account.type == "savings":
        typical *= rng.uniform(1, 5)
    elif account.type == "credit_card":
        typical = -rng.uniform(200, 3000)
    rows = []
    for back, (ret, od) in enumerate(zip(returned, overdraft, strict=True)):
        average = typical * rng.uniform(0.7, 1.3)
        if account.type == "credit_card":
            lowest, deposits = average * rng.uniform(1.1, 1.6), -average * rng.uniform(0.3, 1)
        elif account.type == "savings":
            lowest, deposits = average * rng.uniform(0.9, 1), rng.uniform(0, 500)
        else:
            deposits = income * rng.uniform(0.85, 1.15)
            # The lowest balance agrees with the events: negative when overdrawn.
            if od:
                lowest = -rng.uniform(20, 600)
            elif ret:
                lowest = rng.uniform(0, 50)
            else:
                lowest = average * rng.uniform(0.1, 0.8)
        rows.append(
            StatementRow(
                account.account_id,
                back,
                _cents(average),
                _cents(lowest),
                od,
                ret,
                _cents(deposits),
            )  # fmt: skip
        )
    return rows, _cents(typical * rng.uniform(0.7, 1.3))


def build_history(seed: int, profile: CreditProfile, accounts: list[Account]) -> History:
    """A customer's last months (up to 36, not before they joined) of statements."""
    rng = random.Random(f"{seed}:statements:{profile.customer_id}")
    months = min(profile.tenure_months, HISTORY_MONTHS)
    returned = _events(rng, months, profile.returned_payments_12m, MAX_RETURNED_PER_MONTH)
    overdraft = _events(rng, months, profile.overdraft_days_12m, MAX_OVERDRAFT_DAYS_PER_MONTH)
    checking = next((a for a in accounts if a.type == "checking"), accounts[0])
    per_account: list[list[StatementRow]] = []
    balances: dict[str, float] = {}
    for account in accounts:
        events = (returned, overdraft) if account is checking else ([0] * months, [0] * months)
        rows, balances[account.account_id] = _account_rows(rng, account, profile.tier, *events)
        per_account.append(rows)
    # Newest month first; within a month, accounts in their seeded order.
    ordered = [rows[back] for back in range(months) for rows in per_account]
    return History(ordered, balances)


class StatementBook:
    """Histories built on first use: most customers are never asked for theirs."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._cache: dict[str, History] = {}

    def history(self, profile: CreditProfile, accounts: list[Account]) -> History:
        """The customer's history (the same on every call for a given seed)."""
        found = self._cache.get(profile.customer_id)
        if found is None:
            found = self._cache[profile.customer_id] = build_history(self._seed, profile, accounts)
        return found
