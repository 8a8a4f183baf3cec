"""Credit applications end to end on `fiflow up`: dev server, sandbox, API and workers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from temporalio.client import Client

from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import (
    CHANNEL_KEY,
    REVIEWER_KEY,
    REVIEWER_PERSON_KEY,
    RunningStack,
    channel_for,
)
from tests.e2e.test_alerts_e2e import outbox
from tests.e2e.waiting import eventually

ADMIN_KEY = {"X-API-Key": "local-admin-key"}


def application_body(customer_id: str, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "application_id": f"app-{uuid.uuid4().hex[:16]}",
        "customer_id": customer_id,
        "product": "credit_card",
        "requested_amount": "5000.00",
        "stated_monthly_income": "6000.00",
        "consent": {"credit_pull": True, "given_at": datetime.now(UTC).isoformat()},
    }
    return {**body, **kw}


async def submit(http: httpx.AsyncClient, stack: RunningStack, body: dict[str, Any]) -> str:
    r = await http.post(f"{stack.api}/v1/credit-applications", json=body, headers=CHANNEL_KEY)
    assert r.status_code == 202, r.text
    data = r.json()
    assert data["status_url"] == f"/v1/credit-applications/{data['application_id']}"
    return str(data["application_id"])


async def view(http: httpx.AsyncClient, stack: RunningStack, app_id: str) -> dict[str, Any]:
    r = await http.get(f"{stack.api}/v1/credit-applications/{app_id}", headers=REVIEWER_KEY)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def in_state(
    http: httpx.AsyncClient, stack: RunningStack, app_id: str, state: str
) -> dict[str, Any]:
    def reached(v: dict[str, Any]) -> bool:
        return v["status"] is not None and v["status"]["state"] == state

    found: dict[str, Any] = await eventually(lambda: view(http, stack, app_id), reached, 45)
    return found


async def sandbox(http: httpx.AsyncClient, stack: RunningStack, path: str, **params: str) -> Any:
    r = await http.get(f"{stack.sandbox}{path}", params=params)
    r.raise_for_status()
    return r.json()


async def test_an_application_runs_to_approval_and_its_report_reads_back(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, temporal: Client
) -> None:
    customer = pool.credit_customer("cust-0001")  # score 780, six years, clean history
    cid = customer["customer_id"]
    body = application_body(cid)
    app_id = await submit(http, stack, body)
    # Re-submissions while it runs are the same application.
    again = await asyncio.gather(*(submit(http, stack, body) for _ in range(5)))
    assert set(again) == {app_id}

    done = await in_state(http, stack, app_id, "approved")
    assert await submit(http, stack, body) == app_id  # and after it finished
    other = {**body, "requested_amount": "7000.00"}
    r = await http.post(f"{stack.api}/v1/credit-applications", json=other, headers=CHANNEL_KEY)
    assert (r.status_code, r.json()["code"]) == (409, "application_id_conflict"), r.text
    assert "requested_amount" in r.json()["message"]
    status = done["status"]
    assert status["decision"]["decided_by"] == "rules"
    assert status["decision"]["approved_amount"] == "5000.00"
    assert status["credit_check"]["state"] == "completed"
    assert status["account_history"]["state"] == "completed"

    # Exactly one hard pull, however often the application was submitted.
    hard = await sandbox(http, stack, "/__sandbox/bureau/pulls", customer_id=cid, kind="hard")
    assert [p["idempotency_key"] for p in hard] == [f"credit-{app_id}:hard_pull"]
    accounts = await sandbox(http, stack, "/__sandbox/core-banking/accounts", customer_id=cid)
    assert [(a["status"], a["reference"]) for a in accounts] == [("open", app_id)]
    billing = await sandbox(http, stack, "/__sandbox/billing/accounts", customer_id=cid)
    assert [b["status"] for b in billing] == ["active"]
    assert [s["kind"] for s in billing[0]["schedules"]] == ["statement"]
    texts = [m["body"] for m in await outbox(http, stack, customer["phone"])]
    assert any("approved for $5,000.00" in t for t in texts), texts

    # The report, over HTTP.
    r = await http.get(f"{stack.api}/v1/reports/credit-applications/{app_id}", headers=REVIEWER_KEY)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["decision"], report["decided_by"]) == ("approved", "rules")
    assert report["rule_set_version"] == status["rule_set_version"]
    assert {c["name"]: c["state"] for c in report["children"]} == {
        "credit_check": "completed",
        "account_history": "completed",
    }
    history = next(c for c in report["children"] if c["name"] == "account_history")
    assert history["result"]["summary"]["tenure_months"] >= 70
    calls = {(c["system"], c["step"]) for c in report["backoffice_calls"]}
    assert {("bureau", "hard_pull"), ("core_banking", "open_account"),
            ("billing", "statement_schedule"), ("crm", "crm_approved")} <= calls  # fmt: skip
    assert customer["phone"] not in str(report) and customer["name"] not in str(report)

    listed = await http.get(
        f"{stack.api}/v1/reports/credit-applications",
        params={"decision": "approved", "product": "credit_card", "limit": 500},
        headers=ADMIN_KEY,
    )
    assert listed.status_code == 200, listed.text
    assert app_id in [item["application_id"] for item in listed.json()["items"]]

    # The parent and its children are in Temporal under business IDs.
    children = [
        w.id async for w in temporal.list_workflows(f"ApplicationId = '{app_id}'")
    ]  # fmt: skip
    assert sorted(children) == sorted(
        [f"credit-{app_id}", f"credit-{app_id}-credit-check", f"credit-{app_id}-account-history"]
    )


async def test_a_referred_application_is_approved_by_a_manager_over_http(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool
) -> None:
    customer = pool.credit_customer("cust-0003")  # score 640: borderline, referred
    app_id = await submit(http, stack, application_body(customer["customer_id"]))
    waiting = await in_state(http, stack, app_id, "awaiting_review")
    assert waiting["status"]["rules_decision"]["reasons"] == ["SCORE_BORDERLINE"]
    review_url = f"{stack.api}/v1/credit-applications/{app_id}/review"
    approve = {"decision": "approve", "note": "long-standing customer"}

    r = await http.post(review_url, json=approve, headers=CHANNEL_KEY)
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    r = await http.post(review_url, json=approve)
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    docs = {"submission_id": "sub-1", "documents": [{"kind": "payslip", "reference": "d-1"}]}
    r = await http.post(
        f"{stack.api}/v1/credit-applications/{app_id}/documents",
        json=docs,
        headers=channel_for(customer["customer_id"]),
    )
    assert (r.status_code, r.json()["code"]) == (409, "wrong_state")
    # A shared reviewer key is no one: it may read, not decide; nor may a body speak for another.
    r = await http.post(review_url, json=approve, headers=REVIEWER_KEY)
    assert (r.status_code, r.json()["code"]) == (403, "person_required")
    r = await http.post(
        review_url, json={**approve, "reviewer_id": "mgr-7"}, headers=REVIEWER_PERSON_KEY
    )
    assert (r.status_code, r.json()["code"]) == (403, "reviewer_mismatch")
    assert (await view(http, stack, app_id))["status"]["state"] == "awaiting_review"

    r = await http.post(review_url, json=approve, headers=REVIEWER_PERSON_KEY)
    assert r.status_code == 200, r.text
    done = await in_state(http, stack, app_id, "approved")
    assert done["status"]["decision"]["decided_by"] == "reviewer:reviewer-1"
    assert [rv["reviewer_id"] for rv in done["status"]["reviews"]] == ["reviewer-1"]
    report = await http.get(f"{stack.api}/v1/reports/credit-applications/{app_id}",
                            headers=REVIEWER_KEY)  # fmt: skip
    if report.status_code == 200:  # stored once the run finishes writing it
        assert report.json()["decided_by"] == "reviewer:reviewer-1"

    r = await http.post(review_url, json=approve, headers=REVIEWER_PERSON_KEY)
    assert (r.status_code, r.json()["code"]) == (409, "application_finished")
    assert "approved" in r.json()["message"]


async def test_a_billing_failure_leaves_no_half_open_account(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, profiles: list[dict]
) -> None:
    customer = pool.strong_applicant(profiles)
    cid = customer["customer_id"]
    # Billing refuses every call (a 4xx is final): the account just opened must be closed.
    r = await http.post(
        f"{stack.sandbox}/__sandbox/faults", json={"system": "billing", "status_code": 422}
    )
    assert r.status_code == 200, r.text
    try:
        app_id = await submit(http, stack, application_body(cid, requested_amount="2000.00"))
        done = await in_state(http, stack, app_id, "failed")
    finally:
        await http.delete(f"{stack.sandbox}/__sandbox/faults", params={"system": "billing"})

    assert "create_billing_account" in done["status"]["failure"]
    accounts = await sandbox(http, stack, "/__sandbox/core-banking/accounts", customer_id=cid)
    assert [(a["status"], a["close_reason"]) for a in accounts] == [
        ("closed", "application_failed")
    ]
    assert await sandbox(http, stack, "/__sandbox/billing/accounts", customer_id=cid) == []
    texts = [m["body"] for m in await outbox(http, stack, customer["phone"])]
    assert any("couldn't finish" in t for t in texts), texts
    r = await http.get(f"{stack.api}/v1/reports/credit-applications/{app_id}", headers=ADMIN_KEY)
    assert r.status_code == 200 and r.json()["decision"] == "failed"
