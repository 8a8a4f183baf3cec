"""Billing: accounts, schedules, cancellation, idempotency, errors and faults."""

from __future__ import annotations

from typing import Any

import httpx

from tests.sandbox.helpers import assert_error, calls, view

ACCOUNT = {
    "customer_id": "cust-0002",
    "core_account_id": "acct-0123",
    "product": "credit_card",
    "currency": "USD",
    "reference": "app-2",
}
STATEMENT = {"kind": "statement", "day_of_month": 5}
CHARGE = {"kind": "recurring_charge", "day_of_month": 28, "amount": 9.5, "description": "Fee"}


async def create(sandbox: httpx.AsyncClient, key: str = "", **changes: Any) -> httpx.Response:
    """POST /billing/accounts."""
    headers = {"Idempotency-Key": key} if key else {}
    return await sandbox.post("/billing/accounts", json={**ACCOUNT, **changes}, headers=headers)


async def test_account_schedules_and_cancel(sandbox: httpx.AsyncClient) -> None:
    created = await create(sandbox)
    assert created.status_code == 201
    account = created.json()
    billing_id = account["billing_account_id"]
    assert account == {
        "billing_account_id": billing_id,
        "customer_id": "cust-0002",
        "core_account_id": "acct-0123",
        "status": "active",
    }

    path = f"/billing/accounts/{billing_id}/schedules"
    statement = await sandbox.post(path, json=STATEMENT)
    charge = await sandbox.post(path, json=CHARGE)
    assert statement.status_code == charge.status_code == 201
    assert statement.json() == {
        "schedule_id": statement.json()["schedule_id"],
        "billing_account_id": billing_id,
        "kind": "statement",
        "day_of_month": 5,
        "amount": None,
    }
    assert charge.json()["kind"] == "recurring_charge" and charge.json()["amount"] == 9.5
    assert statement.json()["schedule_id"] != charge.json()["schedule_id"]

    [listed] = await view(sandbox, "/__sandbox/billing/accounts", customer_id="cust-0002")
    assert listed["status"] == "active" and listed["product"] == "credit_card"
    assert [(s["kind"], s["status"]) for s in listed["schedules"]] == [
        ("statement", "active"),
        ("recurring_charge", "active"),
    ]
    assert listed["schedules"][1]["description"] == "Fee"

    cancel_path = f"/billing/accounts/{billing_id}/cancel"
    cancelled = await sandbox.post(cancel_path, json={"reason": "declined"})
    assert cancelled.status_code == 200
    assert cancelled.json() == {"billing_account_id": billing_id, "status": "cancelled"}
    again = await sandbox.post(cancel_path, json={"reason": "retry"})
    assert again.status_code == 200 and again.json() == cancelled.json()

    [listed] = await view(sandbox, "/__sandbox/billing/accounts")
    assert listed["status"] == "cancelled" and listed["cancel_reason"] == "declined"
    assert [s["status"] for s in listed["schedules"]] == ["cancelled", "cancelled"]
    late = await sandbox.post(path, json=STATEMENT)
    assert_error(late, 409, "billing_account_cancelled")
    assert await view(sandbox, "/__sandbox/billing/accounts", customer_id="cust-0001") == []


async def test_billing_writes_are_idempotent(sandbox: httpx.AsyncClient) -> None:
    first = await create(sandbox, key="credit-app-2/billing")
    second = await create(sandbox, key="credit-app-2/billing")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json() and second.headers["idempotent-replayed"] == "true"
    assert len(await view(sandbox, "/__sandbox/billing/accounts")) == 1

    billing_id = first.json()["billing_account_id"]
    path = f"/billing/accounts/{billing_id}/schedules"
    headers = {"Idempotency-Key": "credit-app-2/schedule"}
    one = await sandbox.post(path, json=CHARGE, headers=headers)
    two = await sandbox.post(path, json=CHARGE, headers=headers)
    assert two.json() == one.json() and two.headers["idempotent-replayed"] == "true"
    [account] = await view(sandbox, "/__sandbox/billing/accounts")
    assert len(account["schedules"]) == 1

    cancel_path = f"/billing/accounts/{billing_id}/cancel"
    headers = {"Idempotency-Key": "credit-app-2/cancel"}
    c1 = await sandbox.post(cancel_path, json={"reason": "x"}, headers=headers)
    c2 = await sandbox.post(cancel_path, json={"reason": "x"}, headers=headers)
    assert c2.json() == c1.json() and c2.headers["idempotent-replayed"] == "true"
    # After the cancellation, a replayed schedule still answers its stored response.
    replayed = await sandbox.post(
        path, json=CHARGE, headers={"Idempotency-Key": "credit-app-2/schedule"}
    )
    assert replayed.status_code == 201 and replayed.json() == one.json()
    recorded = await calls(sandbox, system="billing")
    assert [c["replayed"] for c in recorded] == [False, True, False, True, False, True, True]


async def test_billing_errors(sandbox: httpx.AsyncClient) -> None:
    assert_error(await create(sandbox, customer_id="cust-9999"), 404, "customer_not_found")
    assert_error(await create(sandbox, currency="dollars"), 422, "invalid_request")
    for action, body in (("schedules", STATEMENT), ("cancel", {"reason": "x"})):
        missing = await sandbox.post(f"/billing/accounts/bill-nope/{action}", json=body)
        assert_error(missing, 404, "billing_account_not_found")

    billing_id = (await create(sandbox)).json()["billing_account_id"]
    path = f"/billing/accounts/{billing_id}/schedules"
    no_amount = await sandbox.post(path, json={"kind": "recurring_charge", "day_of_month": 1})
    assert_error(no_amount, 422, "invalid_request")
    assert "amount" in no_amount.json()["message"]
    for bad in (
        {"kind": "statement", "day_of_month": 29},
        {"kind": "statement", "day_of_month": 0},
        {"kind": "weekly", "day_of_month": 1},
        {"kind": "recurring_charge", "day_of_month": 1, "amount": -1},
    ):
        assert_error(await sandbox.post(path, json=bad), 422, "invalid_request")
    assert_error(
        await sandbox.post(f"/billing/accounts/{billing_id}/cancel", json={}),
        422,
        "invalid_request",
    )
    [account] = await view(sandbox, "/__sandbox/billing/accounts")
    assert account["schedules"] == [] and account["status"] == "active"
    recorded = await calls(sandbox, system="billing")
    assert [c["status_code"] for c in recorded] == [404, 422, 404, 404, 201] + [422] * 6


async def test_fault_then_success(sandbox: httpx.AsyncClient) -> None:
    fault = {"system": "billing", "status_code": 503, "remaining": 1}
    await sandbox.post("/__sandbox/faults", json=fault)
    assert_error(await create(sandbox, key="k-bill"), 503, "injected_fault")
    assert await view(sandbox, "/__sandbox/billing/accounts") == []
    ok = await create(sandbox, key="k-bill")
    assert ok.status_code == 201 and "idempotent-replayed" not in ok.headers
    assert len(await view(sandbox, "/__sandbox/billing/accounts")) == 1
    recorded = await calls(sandbox, system="billing")
    assert [(c["fault"], c["status_code"]) for c in recorded] == [(True, 503), (False, 201)]
