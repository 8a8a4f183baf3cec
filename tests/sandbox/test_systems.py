"""The JSON back-office systems: behaviour, errors and idempotent replay."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


async def calls(sandbox: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    """Recorded calls, filtered."""
    response = await sandbox.get("/__sandbox/calls", params=params)
    assert response.status_code == 200
    return response.json()


WRITES = [
    ("crm", "/crm/customers/cust-0001/notes", {"text": "Called about alert", "category": "fraud"}),
    (
        "fraud",
        "/fraud/cases",
        {"case_ref": "alert-1", "customer_id": "cust-0001", "outcome": "fraud"},
    ),
    ("card", "/cards/block", {"customer_id": "cust-0001", "card_last4": "4242"}),
    (
        "contact_center",
        "/contact-center/callbacks",
        {"customer_id": "cust-0002", "reason": "Unresolved", "priority": "high"},
    ),
    (
        "push",
        "/push/messages",
        {"device_id": "dev-0002", "title": "Alert", "body": "Was this you?", "actions": ["yes"]},
    ),
]


@pytest.mark.parametrize(("system", "path", "body"), WRITES, ids=[w[0] for w in WRITES])
async def test_write_is_idempotent(
    sandbox: httpx.AsyncClient, system: str, path: str, body: dict[str, Any]
) -> None:
    key = f"wf-1/{system}"
    first = await sandbox.post(path, json=body, headers={"Idempotency-Key": key})
    second = await sandbox.post(path, json=body, headers={"Idempotency-Key": key})
    assert first.status_code in (200, 201)
    assert (second.status_code, second.json()) == (first.status_code, first.json())
    assert second.headers["idempotent-replayed"] == "true"

    recorded = await calls(sandbox, system=system, idempotency_key=key)
    assert [c["replayed"] for c in recorded] == [False, True]
    assert recorded[0]["body"] == body and recorded[0]["method"] == "POST"
    assert recorded[0]["path"] == path and recorded[0]["status_code"] == first.status_code
    assert recorded[0]["id"] < recorded[1]["id"]

    # A different key is a different request: a second effect.
    third = await sandbox.post(path, json=body, headers={"Idempotency-Key": key + "-other"})
    assert third.status_code == first.status_code
    if system != "card":
        assert third.json() != first.json()


async def test_push_replay_sends_once(sandbox: httpx.AsyncClient) -> None:
    body = {"device_id": "dev-0002", "title": "T", "body": "B", "data": {"alert_id": "a1"}}
    for _ in range(3):
        response = await sandbox.post("/push/messages", json=body, headers={"Idempotency-Key": "p"})
        assert response.status_code == 201
    outbox = (await sandbox.get("/__sandbox/push/outbox", params={"device_id": "dev-0002"})).json()
    assert len(outbox) == 1
    assert outbox[0]["data"] == {"alert_id": "a1"} and outbox[0]["actions"] == []
    assert outbox[0]["push_id"] == response.json()["push_id"]
    other = (await sandbox.get("/__sandbox/push/outbox", params={"device_id": "dev-0013"})).json()
    assert other == []


async def test_push_unknown_device(sandbox: httpx.AsyncClient) -> None:
    body = {"device_id": "dev-9999", "title": "T", "body": "B"}
    response = await sandbox.post("/push/messages", json=body, headers={"Idempotency-Key": "x"})
    assert response.status_code == 404 and response.json()["code"] == "device_not_found"
    # Failures are not stored: the same key is evaluated again.
    again = await sandbox.post("/push/messages", json=body, headers={"Idempotency-Key": "x"})
    assert again.status_code == 404
    assert [c["replayed"] for c in await calls(sandbox, idempotency_key="x")] == [False, False]


async def test_card_block_and_unblock_change_state(sandbox: httpx.AsyncClient) -> None:
    command = {"customer_id": "cust-0001", "card_last4": "4242", "reason": "fraud"}
    blocked = await sandbox.post("/cards/block", json=command)
    assert blocked.status_code == 200
    assert blocked.json() == {"card_id": "card-0001-01", "last4": "4242", "status": "blocked"}
    customer = (await sandbox.get("/crm/customers/cust-0001")).json()
    assert customer["cards"][0]["status"] == "blocked"
    listed = (await sandbox.get("/__sandbox/customers")).json()
    assert listed[0]["cards"][0]["status"] == "blocked"

    unblocked = await sandbox.post("/cards/unblock", json=command)
    assert unblocked.status_code == 200 and unblocked.json()["status"] == "active"
    customer = (await sandbox.get("/crm/customers/cust-0001")).json()
    assert customer["cards"][0]["status"] == "active"


async def test_card_not_found(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.post(
        "/cards/block", json={"customer_id": "cust-0001", "card_last4": "0000"}
    )
    assert response.status_code == 404
    assert response.json()["code"] == "card_not_found" and response.json()["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/crm/customers/cust-9999/notes", {"text": "x"}),
        ("/fraud/cases", {"case_ref": "r", "customer_id": "cust-9999", "outcome": "genuine"}),
        (
            "/contact-center/callbacks",
            {"customer_id": "cust-9999", "reason": "r", "priority": "low"},
        ),
    ],
)
async def test_unknown_customer(sandbox: httpx.AsyncClient, path: str, body: dict) -> None:
    response = await sandbox.post(path, json=body)
    assert response.status_code == 404 and response.json()["code"] == "customer_not_found"


async def test_crm_reads(sandbox: httpx.AsyncClient) -> None:
    missing = await sandbox.get("/crm/customers/cust-9999")
    assert missing.status_code == 404 and missing.json()["code"] == "customer_not_found"
    found = (await sandbox.get("/crm/customers", params={"phone": "+12025550102"})).json()
    assert [c["customer_id"] for c in found] == ["cust-0002"]
    # An unencoded "+" arrives as a space; the CRM still finds the customer.
    raw = (await sandbox.get("/crm/customers?phone=+12025550102")).json()
    assert [c["customer_id"] for c in raw] == ["cust-0002"]
    none = (await sandbox.get("/crm/customers", params={"phone": "+12025550199"})).json()
    assert none == []
    recorded = await calls(sandbox, system="crm")
    assert [c["status_code"] for c in recorded] == [404, 200, 200, 200]
    assert all(c["method"] == "GET" and c["body"] is None for c in recorded)


async def test_validation_error_shape_and_recording(sandbox: httpx.AsyncClient) -> None:
    body = {"case_ref": "r", "customer_id": "cust-0001", "outcome": "maybe"}
    response = await sandbox.post("/fraud/cases", json=body, headers={"Idempotency-Key": "v"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request" and "outcome" in response.json()["message"]
    recorded = await calls(sandbox, system="fraud")
    assert len(recorded) == 1 and recorded[0]["status_code"] == 422
    assert recorded[0]["body"] == body and recorded[0]["idempotency_key"] == "v"

    broken = await sandbox.post(
        "/fraud/cases", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422 and broken.json()["code"] == "invalid_request"


async def test_unknown_route_and_filters(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.get("/nothing/here")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    bad_filter = await sandbox.get("/__sandbox/calls", params={"system": "ledger"})
    assert bad_filter.status_code == 422 and bad_filter.json()["code"] == "invalid_request"
    await sandbox.get("/__sandbox/health")
    assert await calls(sandbox) == []  # inspection is not recorded
