"""Core banking: recent card transactions, seeded and relative to the sandbox's date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from fiflow.sandbox.card_transactions import (
    MAX_GAP_DAYS,
    MERCHANTS,
    WINDOW_DAYS,
    day_transactions,
    recent_transactions,
)
from fiflow.sandbox.seed import build_customers
from tests.sandbox.conftest import TODAY
from tests.sandbox.helpers import assert_error, calls, view

FIELDS = {"transaction_id", "card_last4", "amount", "currency", "merchant", "occurred_at"}
MERCHANT_NAMES = {m.name for m in MERCHANTS}
# The sandbox's today is 2024-05-31 (conftest): the window is 1..30 May 2024.
WINDOW_START = datetime(2024, 5, 1, tzinfo=UTC)
WINDOW_END = datetime(2024, 5, 31, tzinfo=UTC)


def path(customer_id: str) -> str:
    return f"/core-banking/customers/{customer_id}/transactions"


async def items(sandbox: httpx.AsyncClient, customer_id: str, **params: Any) -> list[dict]:
    """The transactions answered for a customer, asserting success and the envelope."""
    response = await sandbox.get(path(customer_id), params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items"}
    return body["items"]


def moment(item: dict[str, Any]) -> datetime:
    assert item["occurred_at"].endswith("Z")
    return datetime.fromisoformat(item["occurred_at"])


async def test_shape_order_and_window(sandbox: httpx.AsyncClient) -> None:
    customer = (await sandbox.get("/crm/customers/cust-0001")).json()
    found = await items(sandbox, "cust-0001", limit=50)
    # Fewer than the limit, so this is the whole window.
    assert 3 <= len(found) < 50
    assert all(set(t) == FIELDS for t in found)
    assert {t["card_last4"] for t in found} == {"4242"}
    assert {t["currency"] for t in found} == {customer["accounts"][0]["currency"]} == {"USD"}
    assert {t["merchant"] for t in found} <= MERCHANT_NAMES
    assert len({t["transaction_id"] for t in found}) == len(found)
    assert all(t["transaction_id"].startswith("txn-") for t in found)
    for t in found:
        assert isinstance(t["amount"], float) and 3 <= t["amount"] <= 2500
        assert round(t["amount"], 2) == t["amount"]
    moments = [moment(t) for t in found]
    assert moments == sorted(moments, reverse=True)
    assert all(WINDOW_START <= m < WINDOW_END for m in moments)
    # Spread over the window, not bunched at one end.
    assert moments[-1] < WINDOW_START + timedelta(days=10)
    assert moments[0] >= WINDOW_END - timedelta(days=10)


async def test_same_answer_every_time_and_after_reset(sandbox: httpx.AsyncClient) -> None:
    first = await items(sandbox, "cust-0004", limit=50)
    assert await items(sandbox, "cust-0004", limit=50) == first
    assert (await sandbox.post("/__sandbox/reset")).status_code == 200
    assert await items(sandbox, "cust-0004", limit=50) == first
    # They come from the seed, the customer and the date alone.
    [customer] = [c for c in build_customers(7) if c.customer_id == "cust-0004"]
    expected = recent_transactions(7, customer, date.fromisoformat(TODAY), None, 50)
    assert first == [t.view() for t in expected]
    assert await items(sandbox, "cust-0005", limit=50) != first


async def test_default_limit_and_limit(sandbox: httpx.AsyncClient) -> None:
    everything = await items(sandbox, "cust-0002", limit=50)
    assert len(everything) > 10
    assert await items(sandbox, "cust-0002") == everything[:10]
    assert await items(sandbox, "cust-0002", limit=3) == everything[:3]
    assert await items(sandbox, "cust-0002", limit=1) == everything[:1]
    for bad in (0, 51, "many"):
        assert_error(
            await sandbox.get(path("cust-0002"), params={"limit": bad}), 422, "invalid_request"
        )


async def test_filter_by_card(sandbox: httpx.AsyncClient) -> None:
    customers = await view(sandbox, "/__sandbox/customers")
    customer = next(c for c in customers if len(c["cards"]) == 2)
    last4s = [card["last4"] for card in customer["cards"]]
    everything = await items(sandbox, customer["customer_id"], limit=50)
    assert {t["card_last4"] for t in everything} == set(last4s)
    per_card = []
    for last4 in last4s:
        mine = await items(sandbox, customer["customer_id"], card_last4=last4, limit=50)
        assert 3 <= len(mine) < 50 and {t["card_last4"] for t in mine} == {last4}
        assert await items(sandbox, customer["customer_id"], card_last4=last4, limit=2) == mine[:2]
        per_card.extend(mine)
    # Unfiltered is both cards' transactions merged, newest first.
    per_card.sort(key=lambda t: (t["occurred_at"], t["transaction_id"]), reverse=True)
    assert everything == per_card[:50]


async def test_every_card_has_at_least_three(sandbox: httpx.AsyncClient) -> None:
    for customer in await view(sandbox, "/__sandbox/customers"):
        for card in customer["cards"]:
            found = await items(
                sandbox, customer["customer_id"], card_last4=card["last4"], limit=50
            )
            assert len(found) >= 3, (customer["customer_id"], card["last4"])


async def test_unknown_customer_and_card(sandbox: httpx.AsyncClient) -> None:
    assert_error(await sandbox.get(path("cust-9999")), 404, "customer_not_found")
    # 1881 is cust-0002's card, not cust-0001's.
    assert_error(
        await sandbox.get(path("cust-0001"), params={"card_last4": "1881"}), 404, "card_not_found"
    )
    assert_error(
        await sandbox.get(path("cust-0001"), params={"card_last4": "42"}), 422, "invalid_request"
    )


async def test_recorded_as_reads_and_faults_apply(sandbox: httpx.AsyncClient) -> None:
    await items(sandbox, "cust-0001")
    await sandbox.get(path("cust-0001"), params={"card_last4": "4242"}, headers={"X": "y"})
    await sandbox.get(path("cust-0001"), headers={"Idempotency-Key": "read-1"})
    await sandbox.post("/__sandbox/faults", json={"system": "core_banking", "remaining": 1})
    assert_error(await sandbox.get(path("cust-0001")), 500, "injected_fault")
    assert_error(await sandbox.get(path("cust-9999")), 404, "customer_not_found")
    recorded = await calls(sandbox, system="core_banking")
    assert [
        (c["method"], c["path"], c["status_code"], c["fault"], c["idempotency_key"])
        for c in recorded
    ] == [
        ("GET", path("cust-0001"), 200, False, None),
        ("GET", path("cust-0001"), 200, False, None),
        ("GET", path("cust-0001"), 200, False, None),
        ("GET", path("cust-0001"), 500, True, None),
        ("GET", path("cust-9999"), 404, False, None),
    ]
    assert recorded[1]["query"] == {"card_last4": "4242"}


# --- the generator itself, over many dates --------------------------------------------------


@pytest.mark.parametrize("seed", [7, 8])
def test_generator_holds_for_every_date(seed: int) -> None:
    customers = build_customers(seed)
    for offset in range(0, 120, 7):
        today = date(2024, 1, 1) + timedelta(days=offset)
        start = datetime.combine(today - timedelta(days=WINDOW_DAYS), datetime.min.time(), UTC)
        end = datetime.combine(today, datetime.min.time(), UTC)
        for customer in customers:
            for card in customer.cards:
                found = recent_transactions(seed, customer, today, card.last4, 1000)
                assert len(found) >= 3
                assert all(start <= t.occurred_at < end for t in found)


@pytest.mark.parametrize("seed", [7, 8])
def test_no_card_goes_unused_longer_than_the_gap(seed: int) -> None:
    # What makes "3+ in any 30 days" hold by construction rather than by luck.
    first = date(2024, 1, 1)
    for customer in build_customers(seed):
        currencies = {a.account_id: a.currency for a in customer.accounts}
        for card in customer.cards:
            used = [
                offset
                for offset in range(365)
                if day_transactions(
                    seed,
                    customer.customer_id,
                    card.last4,
                    currencies[card.account_id],
                    first + timedelta(days=offset),
                )
            ]
            gaps = [b - a for a, b in zip(used, used[1:], strict=False)]
            assert used[0] < MAX_GAP_DAYS and max(gaps) <= MAX_GAP_DAYS


def test_a_transaction_stays_put_as_the_date_advances() -> None:
    customer = build_customers(7)[2]
    dropped = added = 0
    for offset in range(WINDOW_DAYS):
        today = date(2024, 3, 1) + timedelta(days=offset)
        now = recent_transactions(7, customer, today, None, 1000)
        tomorrow = recent_transactions(7, customer, today + timedelta(days=1), None, 1000)
        oldest_day = today - timedelta(days=WINDOW_DAYS)
        # Tomorrow's window is today's without its oldest day, plus today's purchases.
        assert [t for t in tomorrow if t.occurred_at.date() != today] == [
            t for t in now if t.occurred_at.date() != oldest_day
        ]
        dropped += sum(t.occurred_at.date() == oldest_day for t in now)
        added += sum(t.occurred_at.date() == today for t in tomorrow)
    assert dropped > 0 and added > 0


def test_the_seed_decides() -> None:
    today = date(2024, 5, 31)
    first = recent_transactions(7, build_customers(7)[0], today, None, 50)
    assert recent_transactions(7, build_customers(7)[0], today, None, 50) == first
    assert recent_transactions(8, build_customers(8)[0], today, None, 50) != first
