"""Reset returns the bureau, core banking and billing to their seeded state."""

from __future__ import annotations

import httpx

from tests.sandbox.helpers import calls, view

PULL = {"customer_id": "cust-0005", "kind": "hard", "purpose": "p", "reference": "r"}
OPEN = {"customer_id": "cust-0005", "product": "overdraft", "amount": 500, "reference": "r"}


async def test_reset_restores_the_credit_systems(sandbox: httpx.AsyncClient) -> None:
    profiles = await view(sandbox, "/__sandbox/credit-profiles")
    soft = {**PULL, "kind": "soft"}
    baseline = (await sandbox.post("/bureau/pulls", json=soft)).json()["recent_inquiries"]
    await sandbox.post("/bureau/pulls", json=PULL, headers={"Idempotency-Key": "k-pull"})
    account = (await sandbox.post("/core-banking/accounts", json=OPEN)).json()
    bill = {**OPEN, "core_account_id": account["account_id"], "currency": "USD"}
    await sandbox.post("/billing/accounts", json=bill)
    await sandbox.post("/__sandbox/faults", json={"system": "billing", "latency_ms": 1})
    assert (await sandbox.post("/bureau/pulls", json=soft)).json()[
        "recent_inquiries"
    ] == baseline + 1
    assert len(await view(sandbox, "/__sandbox/bureau/pulls")) == 3
    assert len(await view(sandbox, "/__sandbox/core-banking/accounts")) == 1
    assert len(await view(sandbox, "/__sandbox/billing/accounts")) == 1

    assert (await sandbox.post("/__sandbox/reset")).status_code == 200
    assert await view(sandbox, "/__sandbox/bureau/pulls") == []
    assert await view(sandbox, "/__sandbox/core-banking/accounts") == []
    assert await view(sandbox, "/__sandbox/billing/accounts") == []
    assert await view(sandbox, "/__sandbox/faults") == []
    assert await view(sandbox, "/__sandbox/credit-profiles") == profiles
    summary = (await sandbox.get("/core-banking/customers/cust-0005/summary")).json()
    assert account["account_id"] not in [a["account_id"] for a in summary["accounts"]]
    # Inquiries are back to the seeded count, and the old key applies a new pull.
    assert (await sandbox.post("/bureau/pulls", json=soft)).json()["recent_inquiries"] == baseline
    await sandbox.post("/bureau/pulls", json=PULL, headers={"Idempotency-Key": "k-pull"})
    [call] = await calls(sandbox, idempotency_key="k-pull")
    assert call["replayed"] is False
    assert len(await view(sandbox, "/__sandbox/bureau/pulls", kind="hard")) == 1
