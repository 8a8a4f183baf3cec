"""Seeded credit profiles: the fixed ones, the drawn spread, determinism, the clock."""

from __future__ import annotations

from datetime import date

import httpx

from fiflow.sandbox.config import SandboxConfig
from fiflow.sandbox.credit_profiles import build_profiles
from fiflow.sandbox.months import add_months, last_complete_month, month_label, utc_today
from fiflow.sandbox.seed import build_customers
from fiflow.sandbox.state import SandboxState
from fiflow.sandbox.statements import build_history
from tests.sandbox.helpers import view

FIXED = {
    "cust-0001": (780, 350, "2018-05-31", 0, 0),
    "cust-0002": (705, 900, "2020-05-31", 0, 0),
    "cust-0003": (640, 600, "2022-05-31", 0, 0),
    "cust-0004": (560, 1500, "2021-05-31", 2, 12),
    "cust-0005": (760, 300, "2019-05-31", 4, 0),
    "cust-0006": (750, 200, "2024-02-29", 0, 0),  # three months before 2024-05-31
}
FIELDS = {
    "customer_id", "score", "monthly_debt_payments", "open_tradelines", "delinquencies_24m",
    "customer_since", "returned_payments_12m", "overdraft_days_12m",
}  # fmt: skip


async def test_fixed_profiles(sandbox: httpx.AsyncClient) -> None:
    profiles = await view(sandbox, "/__sandbox/credit-profiles")
    by_id = {p["customer_id"]: p for p in profiles}
    for customer_id, (score, debt, since, returned, overdraft) in FIXED.items():
        profile = by_id[customer_id]
        assert set(profile) == FIELDS
        assert (
            profile["score"],
            profile["monthly_debt_payments"],
            profile["customer_since"],
            profile["returned_payments_12m"],
            profile["overdraft_days_12m"],
        ) == (score, debt, since, returned, overdraft), customer_id
    assert by_id["cust-0006"]["open_tradelines"] <= 2  # a thin file


async def test_every_customer_has_a_realistic_profile(sandbox: httpx.AsyncClient) -> None:
    profiles = await view(sandbox, "/__sandbox/credit-profiles")
    customers = await view(sandbox, "/__sandbox/customers")
    assert [p["customer_id"] for p in profiles] == [c["customer_id"] for c in customers]
    drawn = [p for p in profiles if p["customer_id"] not in FIXED]
    assert len(drawn) == len(profiles) - 6 >= 18
    scores = [p["score"] for p in drawn]
    assert all(520 <= s <= 820 for s in scores)
    assert min(scores) < 600 and max(scores) >= 780 and len(set(scores)) > len(scores) // 2
    strong_and_clean = [
        p
        for p in drawn
        if p["score"] >= 740 and p["returned_payments_12m"] == 0 and p["overdraft_days_12m"] == 0
    ]
    assert len(strong_and_clean) >= 3
    assert any(p["returned_payments_12m"] > 0 for p in drawn)
    assert any(p["overdraft_days_12m"] > 0 for p in drawn)
    for p in profiles:
        assert p["monthly_debt_payments"] >= 0 and p["open_tradelines"] >= 1
        assert date.fromisoformat(p["customer_since"]) < date(2024, 5, 31)


def test_profiles_are_deterministic_from_the_seed() -> None:
    assert build_profiles(7) == build_profiles(7)
    assert build_profiles(7)[6:] != build_profiles(8)[6:]
    for seed in (1, 2, 3, 8):
        profiles = build_profiles(seed)
        assert [p.score for p in profiles[:6]] == [780, 705, 640, 560, 760, 750]
        clean = [
            p
            for p in profiles[6:]
            if p.score >= 740 and p.returned_payments_12m == 0 and p.overdraft_days_12m == 0
        ]
        assert len(clean) >= 3, seed
    # More customers add profiles without changing the existing ones.
    assert build_profiles(7, 100)[:24] == build_profiles(7, 24)[:24]


def test_histories_agree_with_profiles_for_many_seeds() -> None:
    for seed in (1, 7, 42):
        for profile, customer in zip(
            build_profiles(seed, 60), build_customers(seed, 60), strict=True
        ):
            rows = build_history(seed, profile, customer.accounts).rows
            last_year = [r for r in rows if r.months_back < 12]
            assert sum(r.returned_payments for r in last_year) == profile.returned_payments_12m
            assert sum(r.overdraft_days for r in last_year) == profile.overdraft_days_12m
            assert len(rows) == min(profile.tenure_months, 36) * len(customer.accounts)
            assert all(r.lowest_balance < 0 for r in rows if r.overdraft_days)


def test_month_arithmetic() -> None:
    assert add_months(date(2024, 5, 31), -3) == date(2024, 2, 29)
    assert add_months(date(2023, 5, 31), -3) == date(2023, 2, 28)
    assert add_months(date(2024, 1, 15), -1) == date(2023, 12, 15)
    assert add_months(date(2024, 11, 30), 2) == date(2025, 1, 30)
    assert last_complete_month(date(2024, 1, 1)) == date(2023, 12, 1)
    assert month_label(date(2024, 3, 9)) == "2024-03"


def test_the_clock_is_utc_today_unless_pinned() -> None:
    before = utc_today()
    today = SandboxState(SandboxConfig(today=None)).today()
    assert before <= today <= utc_today()
    pinned = SandboxState(SandboxConfig(today=date(2020, 2, 29))).today()
    assert pinned == date(2020, 2, 29)
