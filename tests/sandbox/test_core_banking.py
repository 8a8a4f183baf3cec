"""Core banking: summaries, paged statements, opening and closing accounts."""

from __future__ import annotations

import math
from typing import Any

import httpx

from tests.sandbox.helpers import assert_error, calls, view

ROW_FIELDS = {
    "account_id", "month", "average_balance", "lowest_balance", "overdraft_days",
    "returned_payments", "deposits_total",
}  # fmt: skip
# The sandbox's today is 2024-05-31 (conftest), so the last complete month is April 2024.
LAST_12 = [f"2024-{m:02d}" for m in range(4, 0, -1)] + [f"2023-{m:02d}" for m in range(12, 4, -1)]
OPEN_CARD = {
    "customer_id": "cust-0001",
    "product": "credit_card",
    "amount": 5000,
    "currency": "USD",
    "reference": "app-1",
}


async def all_pages(
    sandbox: httpx.AsyncClient, customer_id: str, **params: Any
) -> list[dict[str, Any]]:
    """Every page of a customer's statements, following next_cursor to the end."""
    pages: list[dict[str, Any]] = []
    cursor = None
    path = f"/core-banking/customers/{customer_id}/statements"
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await sandbox.get(path, params=query)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 200, "paging does not end"


async def test_summary_lists_the_seeded_accounts(sandbox: httpx.AsyncClient) -> None:
    customer = (await sandbox.get("/crm/customers/cust-0001")).json()
    response = await sandbox.get("/core-banking/customers/cust-0001/summary")
    assert response.status_code == 200
    summary = response.json()
    assert summary["customer_id"] == "cust-0001" and summary["customer_since"] == "2018-05-31"
    assert [(a["account_id"], a["type"], a["currency"]) for a in summary["accounts"]] == [
        (a["account_id"], a["type"], a["currency"]) for a in customer["accounts"]
    ]
    for account in summary["accounts"]:
        assert set(account) == {"account_id", "type", "status", "currency", "opened_on", "balance"}
        assert account["status"] == "open" and account["opened_on"] == "2018-05-31"
        assert isinstance(account["balance"], int | float)
        assert (account["balance"] < 0) == (account["type"] == "credit_card")
    assert_error(
        await sandbox.get("/core-banking/customers/cust-9999/summary"), 404, "customer_not_found"
    )
    recorded = await calls(sandbox, system="core_banking")
    assert [(c["method"], c["status_code"], c["idempotency_key"]) for c in recorded] == [
        ("GET", 200, None),
        ("GET", 404, None),
    ]


async def test_paging_through_statements(sandbox: httpx.AsyncClient) -> None:
    summary = (await sandbox.get("/core-banking/customers/cust-0004/summary")).json()
    account_ids = [a["account_id"] for a in summary["accounts"]]
    pages = await all_pages(sandbox, "cust-0004", months=12, limit=5)
    rows = [row for page in pages for row in page["items"]]

    assert len(rows) == 12 * len(account_ids)
    assert len(pages) == math.ceil(len(rows) / 5)
    assert all(len(page["items"]) == 5 for page in pages[:-1]) and 1 <= len(pages[-1]["items"]) <= 5
    assert all(set(row) == ROW_FIELDS for row in rows)
    assert len({(r["account_id"], r["month"]) for r in rows}) == len(rows)  # no duplicates
    assert sorted({r["month"] for r in rows}, reverse=True) == LAST_12
    assert [r["month"] for r in rows] == sorted((r["month"] for r in rows), reverse=True)
    assert {r["account_id"] for r in rows} == set(account_ids)
    # The last 12 months agree with the credit profile: 2 returned payments, 12 overdraft days.
    assert sum(r["returned_payments"] for r in rows) == 2
    assert sum(r["overdraft_days"] for r in rows) == 12
    assert all(r["lowest_balance"] < 0 for r in rows if r["overdraft_days"] > 0)
    assert all(
        r["lowest_balance"] <= r["average_balance"] for r in rows if r["average_balance"] > 0
    )

    recorded = await calls(sandbox, system="core_banking")
    statement_calls = [c for c in recorded if c["path"].endswith("/statements")]
    assert len(statement_calls) == len(pages)
    assert all(c["method"] == "GET" and c["idempotency_key"] is None for c in statement_calls)
    assert "cursor" not in statement_calls[0]["query"] and "cursor" in statement_calls[1]["query"]


async def test_statement_totals_agree_with_every_profile(sandbox: httpx.AsyncClient) -> None:
    for profile in await view(sandbox, "/__sandbox/credit-profiles"):
        pages = await all_pages(sandbox, profile["customer_id"], limit=100)
        rows = [row for page in pages for row in page["items"]]
        assert sum(r["returned_payments"] for r in rows) == profile["returned_payments_12m"]
        assert sum(r["overdraft_days"] for r in rows) == profile["overdraft_days_12m"]
        assert {r["month"] for r in rows} <= set(LAST_12)


async def test_months_before_customer_since_are_absent(sandbox: httpx.AsyncClient) -> None:
    # cust-0006 joined on 2024-02-29: February, March and April 2024 only.
    summary = (await sandbox.get("/core-banking/customers/cust-0006/summary")).json()
    pages = await all_pages(sandbox, "cust-0006", months=36)
    rows = [row for page in pages for row in page["items"]]
    assert sorted({r["month"] for r in rows}) == ["2024-02", "2024-03", "2024-04"]
    assert len(rows) == 3 * len(summary["accounts"]) and len(pages) == 1
    # A long-standing customer has all 36 months.
    long_rows = [
        r for p in await all_pages(sandbox, "cust-0001", months=36, limit=100) for r in p["items"]
    ]
    assert len({r["month"] for r in long_rows}) == 36
    assert min(r["month"] for r in long_rows) == "2021-05"


async def test_default_window_and_page_size(sandbox: httpx.AsyncClient) -> None:
    first = (await sandbox.get("/core-banking/customers/cust-0001/statements")).json()
    assert len(first["items"]) == 25 and first["next_cursor"]
    rest = await all_pages(sandbox, "cust-0001")
    rows = [r for page in rest for r in page["items"]]
    assert rows[:25] == first["items"]
    assert {r["month"] for r in rows} == set(LAST_12)


async def test_statements_are_deterministic_across_reset(sandbox: httpx.AsyncClient) -> None:
    before = await all_pages(sandbox, "cust-0011", months=24, limit=100)
    summary = (await sandbox.get("/core-banking/customers/cust-0011/summary")).json()
    assert (await sandbox.post("/__sandbox/reset")).status_code == 200
    assert await all_pages(sandbox, "cust-0011", months=24, limit=100) == before
    assert (await sandbox.get("/core-banking/customers/cust-0011/summary")).json() == summary


async def test_bad_cursors_and_parameters(sandbox: httpx.AsyncClient) -> None:
    path = "/core-banking/customers/cust-0001/statements"
    page = (await sandbox.get(path, params={"limit": 2})).json()
    cursor = page["next_cursor"]
    assert cursor
    for bad in ("garbage!", "", "e30", cursor[:-3]):
        assert_error(
            await sandbox.get(path, params={"limit": 2, "cursor": bad}), 400, "invalid_cursor"
        )
    # A cursor belongs to its customer and window.
    other = "/core-banking/customers/cust-0002/statements"
    assert_error(await sandbox.get(other, params={"cursor": cursor}), 400, "invalid_cursor")
    assert_error(
        await sandbox.get(path, params={"months": 6, "cursor": cursor}), 400, "invalid_cursor"
    )
    # The limit may change between pages.
    assert (await sandbox.get(path, params={"limit": 7, "cursor": cursor})).status_code == 200
    for params in ({"months": 0}, {"months": 37}, {"limit": 0}, {"limit": 101}):
        assert_error(await sandbox.get(path, params=params), 422, "invalid_request")
    assert_error(
        await sandbox.get("/core-banking/customers/cust-9999/statements"), 404, "customer_not_found"
    )
    recorded = await calls(sandbox, system="core_banking")
    assert [c["status_code"] for c in recorded] == [200] + [400] * 6 + [200] + [422] * 4 + [404]


async def test_open_and_close_an_account(sandbox: httpx.AsyncClient) -> None:
    opened = await sandbox.post("/core-banking/accounts", json=OPEN_CARD)
    assert opened.status_code == 201
    account = opened.json()
    assert set(account) == {
        "account_id", "customer_id", "product", "amount", "currency", "status", "opened_at",
    }  # fmt: skip
    assert (account["customer_id"], account["product"], account["amount"]) == (
        "cust-0001",
        "credit_card",
        5000,
    )
    assert account["status"] == "open" and account["currency"] == "USD"
    account_id = account["account_id"]

    summary = (await sandbox.get("/core-banking/customers/cust-0001/summary")).json()
    [listed] = [a for a in summary["accounts"] if a["account_id"] == account_id]
    assert listed["type"] == "credit_card" and listed["status"] == "open"
    assert listed["opened_on"] == account["opened_at"][:10]

    closed = await sandbox.post(
        f"/core-banking/accounts/{account_id}/close", json={"reason": "declined"}
    )
    assert closed.status_code == 200
    assert closed.json()["account_id"] == account_id and closed.json()["status"] == "closed"
    # Closing a closed account succeeds again, with the original closing time.
    again = await sandbox.post(
        f"/core-banking/accounts/{account_id}/close", json={"reason": "retry"}
    )
    assert again.status_code == 200 and again.json() == closed.json()

    [state] = await view(sandbox, "/__sandbox/core-banking/accounts", customer_id="cust-0001")
    assert state["account_id"] == account_id and state["status"] == "closed"
    assert state["closed_at"] == closed.json()["closed_at"] and state["close_reason"] == "declined"
    assert state["reference"] == "app-1"
    summary = (await sandbox.get("/core-banking/customers/cust-0001/summary")).json()
    assert [a["status"] for a in summary["accounts"] if a["account_id"] == account_id] == ["closed"]
    assert await view(sandbox, "/__sandbox/core-banking/accounts", customer_id="cust-0002") == []


async def test_loan_balance_and_default_currency(sandbox: httpx.AsyncClient) -> None:
    body = {
        "customer_id": "cust-0003",
        "product": "personal_loan",
        "amount": 12000.5,
        "reference": "r",
    }
    loan = (await sandbox.post("/core-banking/accounts", json=body)).json()
    assert loan["currency"] == "USD" and loan["product"] == "personal_loan"
    summary = (await sandbox.get("/core-banking/customers/cust-0003/summary")).json()
    [listed] = [a for a in summary["accounts"] if a["account_id"] == loan["account_id"]]
    assert listed["balance"] == -12000.5


async def test_account_writes_are_idempotent(sandbox: httpx.AsyncClient) -> None:
    key = "credit-app-3/open-account"
    first = await sandbox.post(
        "/core-banking/accounts", json=OPEN_CARD, headers={"Idempotency-Key": key}
    )
    second = await sandbox.post(
        "/core-banking/accounts", json=OPEN_CARD, headers={"Idempotency-Key": key}
    )
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json() and second.headers["idempotent-replayed"] == "true"
    opened = await view(sandbox, "/__sandbox/core-banking/accounts")
    assert [a["account_id"] for a in opened] == [first.json()["account_id"]]

    close_path = f"/core-banking/accounts/{first.json()['account_id']}/close"
    closed = await sandbox.post(close_path, json={"reason": "x"}, headers={"Idempotency-Key": "c"})
    replay = await sandbox.post(close_path, json={"reason": "x"}, headers={"Idempotency-Key": "c"})
    assert replay.json() == closed.json() and replay.headers["idempotent-replayed"] == "true"
    recorded = await calls(sandbox, system="core_banking")
    assert [(c["idempotency_key"], c["replayed"]) for c in recorded] == [
        (key, False),
        (key, True),
        ("c", False),
        ("c", True),
    ]


async def test_account_errors(sandbox: httpx.AsyncClient) -> None:
    unknown = {**OPEN_CARD, "customer_id": "cust-9999"}
    assert_error(
        await sandbox.post("/core-banking/accounts", json=unknown), 404, "customer_not_found"
    )
    for bad in (
        {**OPEN_CARD, "amount": 0},
        {**OPEN_CARD, "product": "mortgage"},
        {**OPEN_CARD, "currency": "usd"},
    ):
        assert_error(await sandbox.post("/core-banking/accounts", json=bad), 422, "invalid_request")
    reason = {"reason": "x"}
    assert_error(
        await sandbox.post("/core-banking/accounts/acct-nope/close", json=reason),
        404,
        "account_not_found",
    )
    assert_error(
        await sandbox.post("/core-banking/accounts/acc-0001-01/close", json=reason),
        409,
        "account_not_closable",
    )
    assert await view(sandbox, "/__sandbox/core-banking/accounts") == []


async def test_fault_then_success(sandbox: httpx.AsyncClient) -> None:
    fault = {"system": "core_banking", "status_code": 503, "remaining": 1}
    await sandbox.post("/__sandbox/faults", json=fault)
    headers = {"Idempotency-Key": "k-open"}
    failed = await sandbox.post("/core-banking/accounts", json=OPEN_CARD, headers=headers)
    assert_error(failed, 503, "injected_fault")
    assert await view(sandbox, "/__sandbox/core-banking/accounts") == []
    ok = await sandbox.post("/core-banking/accounts", json=OPEN_CARD, headers=headers)
    assert ok.status_code == 201
    assert len(await view(sandbox, "/__sandbox/core-banking/accounts")) == 1
    # Reads fail the same way.
    await sandbox.post("/__sandbox/faults", json=fault)
    path = "/core-banking/customers/cust-0001/statements"
    assert_error(await sandbox.get(path), 503, "injected_fault")
    assert (await sandbox.get(path)).status_code == 200
    recorded = await calls(sandbox, system="core_banking")
    # A refused write took no effect; a read never counts as one.
    assert [(c["fault"], c["status_code"], c["applied"]) for c in recorded] == [
        (True, 503, False),
        (False, 201, True),
        (True, 503, False),
        (False, 200, False),
    ]


async def test_an_opening_is_found_by_its_idempotency_key(sandbox: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": "credit-app-9:open_account"}
    lookup = {"idempotency_key": key["Idempotency-Key"]}
    assert (await sandbox.get("/core-banking/accounts", params=lookup)).json() == {"items": []}
    opened = (await sandbox.post("/core-banking/accounts", json=OPEN_CARD, headers=key)).json()
    await sandbox.post("/core-banking/accounts", json={**OPEN_CARD, "reference": "app-2"})

    found = await sandbox.get("/core-banking/accounts", params=lookup)
    assert found.status_code == 200
    [item] = found.json()["items"]
    assert (item["account_id"], item["status"], item["reference"]) == (
        opened["account_id"],
        "open",
        "app-1",
    )
    await sandbox.post(
        f"/core-banking/accounts/{opened['account_id']}/close", json={"reason": "test"}
    )
    again = await sandbox.get("/core-banking/accounts", params=lookup)
    assert [i["status"] for i in again.json()["items"]] == ["closed"]
    assert_error(await sandbox.get("/core-banking/accounts"), 422, "invalid_request")


async def test_an_after_write_fault_applies_the_write_and_loses_the_answer(
    sandbox: httpx.AsyncClient,
) -> None:
    await sandbox.post(
        "/__sandbox/faults",
        json={"system": "core_banking", "status_code": 504, "after_write": True, "remaining": 2},
    )
    key = {"Idempotency-Key": "k-after-write"}
    first = await sandbox.post("/core-banking/accounts", json=OPEN_CARD, headers=key)
    second = await sandbox.post("/core-banking/accounts", json=OPEN_CARD, headers=key)
    third = await sandbox.post("/core-banking/accounts", json=OPEN_CARD, headers=key)

    assert [first.status_code, second.status_code, third.status_code] == [504, 504, 201]
    # One account, opened by the first call; the third call's answer is its replay.
    accounts = await view(sandbox, "/__sandbox/core-banking/accounts", customer_id="cust-0001")
    assert [a["account_id"] for a in accounts] == [third.json()["account_id"]]
    assert third.headers.get("Idempotent-Replayed") == "true"
    recorded = await calls(sandbox, system="core_banking")
    # Only the first call applied the write, though its answer was lost like a refusal's.
    assert [(c["status_code"], c["fault"], c["replayed"], c["applied"]) for c in recorded] == [
        (504, True, False, True),
        (504, True, True, False),
        (201, False, True, False),
    ]
