"""Injected latency and errors, and reset."""

from __future__ import annotations

import time

import httpx

from tests.sandbox.conftest import ACCOUNT_SID, AUTH_TOKEN, SMS_FROM

CASE = {"case_ref": "alert-7", "customer_id": "cust-0001", "outcome": "genuine"}


async def test_fault_with_remaining_clears_itself(sandbox: httpx.AsyncClient) -> None:
    fault = await sandbox.post(
        "/__sandbox/faults", json={"system": "fraud", "error_rate": 1.0, "remaining": 2}
    )
    assert fault.status_code == 200 and fault.json()["status_code"] == 500
    headers = {"Idempotency-Key": "alert-7/case"}
    statuses = []
    for _ in range(4):
        response = await sandbox.post("/fraud/cases", json=CASE, headers=headers)
        statuses.append(response.status_code)
        if response.status_code == 500:
            assert response.json()["code"] == "injected_fault"
    assert statuses == [500, 500, 201, 201]
    recorded = (await sandbox.get("/__sandbox/calls", params={"system": "fraud"})).json()
    assert [(c["fault"], c["replayed"], c["applied"]) for c in recorded] == [
        (True, False, False),
        (True, False, False),
        (False, False, True),
        (False, True, False),
    ]
    assert (await sandbox.get("/__sandbox/faults")).json() == []


async def test_latency_is_applied(sandbox: httpx.AsyncClient) -> None:
    await sandbox.post(
        "/__sandbox/faults", json={"system": "crm", "error_rate": 0, "latency_ms": 250}
    )
    started = time.monotonic()
    response = await sandbox.get("/crm/customers/cust-0001")
    assert response.status_code == 200 and time.monotonic() - started >= 0.25
    # Other systems are not delayed.
    started = time.monotonic()
    await sandbox.post("/cards/block", json={"customer_id": "cust-0001", "card_last4": "4242"})
    assert time.monotonic() - started < 0.25


async def test_error_rate_fails_a_fraction(sandbox: httpx.AsyncClient) -> None:
    await sandbox.post(
        "/__sandbox/faults", json={"system": "crm", "error_rate": 0.5, "status_code": 503}
    )
    statuses = [(await sandbox.get("/crm/customers/cust-0002")).status_code for _ in range(100)]
    assert set(statuses) == {200, 503}
    assert 25 <= statuses.count(503) <= 75
    listed = (await sandbox.get("/__sandbox/faults")).json()
    assert listed == [
        {
            "system": "crm",
            "error_rate": 0.5,
            "status_code": 503,
            "latency_ms": 0,
            "remaining": None,
            "echo": False,
            "after_write": False,
        }
    ]
    cleared = await sandbox.delete("/__sandbox/faults", params={"system": "crm"})
    assert cleared.json() == []
    assert (await sandbox.get("/crm/customers/cust-0002")).status_code == 200


async def test_sms_fault_uses_twilio_error_shape(sandbox: httpx.AsyncClient) -> None:
    await sandbox.post("/__sandbox/faults", json={"system": "sms", "status_code": 429})
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    form = {"To": "+12025550101", "From": SMS_FROM, "Body": "hi"}
    response = await sandbox.post(path, data=form, auth=(ACCOUNT_SID, AUTH_TOKEN))
    assert response.status_code == 429
    assert response.json()["code"] == 20429 and response.json()["status"] == 429
    assert (await sandbox.get("/__sandbox/sms/outbox")).json() == []


async def test_fault_validation(sandbox: httpx.AsyncClient) -> None:
    for bad in ({"system": "ledger"}, {"system": "crm", "error_rate": 1.5}, {"status_code": 500}):
        response = await sandbox.post("/__sandbox/faults", json=bad)
        assert response.status_code == 422 and response.json()["code"] == "invalid_request"


async def test_reset_restores_seeded_state(sandbox: httpx.AsyncClient) -> None:
    block = {"customer_id": "cust-0002", "card_last4": "1881"}
    await sandbox.post("/cards/block", json=block, headers={"Idempotency-Key": "k"})
    push = {"device_id": "dev-0002", "title": "t", "body": "b"}
    await sandbox.post("/push/messages", json=push)
    await sandbox.post(
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data={"To": "+12025550101", "From": SMS_FROM, "Body": "hi"},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
    )
    await sandbox.post("/__sandbox/faults", json={"system": "push", "latency_ms": 1})
    assert len((await sandbox.get("/__sandbox/calls")).json()) == 3

    assert (await sandbox.post("/__sandbox/reset")).status_code == 200
    assert (await sandbox.get("/__sandbox/calls")).json() == []
    assert (await sandbox.get("/__sandbox/sms/outbox")).json() == []
    assert (await sandbox.get("/__sandbox/push/outbox")).json() == []
    assert (await sandbox.get("/__sandbox/faults")).json() == []
    customer = (await sandbox.get("/crm/customers/cust-0002")).json()
    assert all(card["status"] == "active" for card in customer["cards"])
    # The idempotency store was cleared too: the same key applies the effect again.
    await sandbox.post("/cards/block", json=block, headers={"Idempotency-Key": "k"})
    [call] = (await sandbox.get("/__sandbox/calls", params={"idempotency_key": "k"})).json()
    assert call["replayed"] is False


async def test_an_echoing_fault_quotes_the_request_like_real_providers(
    sandbox: httpx.AsyncClient,
) -> None:
    await sandbox.post("/__sandbox/faults", json={"system": "fraud", "echo": True, "remaining": 1})
    response = await sandbox.post("/fraud/cases", json=CASE)
    assert response.status_code == 500
    assert response.json()["code"] == "request_rejected"
    assert "cust-0001" in response.json()["message"]

    fault = {"system": "sms", "echo": True, "status_code": 400, "remaining": 1}
    await sandbox.post("/__sandbox/faults", json=fault)
    response = await sandbox.post(
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data={"To": "+12025550101", "From": SMS_FROM, "Body": "Your code is 4242"},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
    )
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == 21211
    assert "+12025550101" in error["message"] and "Your code is 4242" in error["message"]

    await sandbox.post("/__sandbox/faults", json={"system": "crm", "echo": True, "remaining": 1})
    response = await sandbox.get("/crm/customers", params={"phone": "+12025550101"})
    assert response.status_code == 500 and "2025550101" in response.json()["message"]


async def test_applied_tells_a_lost_answer_from_a_refusal(sandbox: httpx.AsyncClient) -> None:
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    auth = (ACCOUNT_SID, AUTH_TOKEN)

    async def send(key: str) -> httpx.Response:
        form = {"To": "+12025550101", "From": SMS_FROM, "Body": key}
        return await sandbox.post(path, data=form, auth=auth, headers={"Idempotency-Key": key})

    lost = {"system": "sms", "status_code": 502, "after_write": True, "remaining": 1}
    await sandbox.post("/__sandbox/faults", json=lost)
    assert (await send("k-lost")).status_code == 502
    await sandbox.post("/__sandbox/faults", json={**lost, "after_write": False})
    assert (await send("k-refused")).status_code == 502
    assert (await send("k-lost")).status_code == 201  # the retry: a replay
    assert (await send("k-refused")).status_code == 201  # the retry: the one effect
    # A write the system itself refuses, one refused as invalid, and a read.
    unknown = {"customer_id": "cust-0001", "card_last4": "0000"}
    assert (await sandbox.post("/cards/block", json=unknown)).status_code == 404
    assert (await sandbox.post("/cards/block", json={"customer_id": 1})).status_code == 422
    assert (await sandbox.get("/crm/customers/cust-0001")).status_code == 200

    recorded = (await sandbox.get("/__sandbox/calls")).json()
    seen = [
        (c["idempotency_key"], c["status_code"], c["fault"], c["replayed"], c["applied"])
        for c in recorded
    ]
    assert seen == [
        # The first two look the same to the caller and on every other field.
        ("k-lost", 502, True, False, True),
        ("k-refused", 502, True, False, False),
        ("k-lost", 201, False, True, False),
        ("k-refused", 201, False, False, True),
        (None, 404, False, False, False),
        (None, 422, False, False, False),
        (None, 200, False, False, False),
    ]
    # So the applied calls are exactly the effects: one message per key.
    outbox = (await sandbox.get("/__sandbox/sms/outbox")).json()
    assert sorted(m["body"] for m in outbox) == ["k-lost", "k-refused"]
    assert sum(c["applied"] for c in recorded) == len(outbox)
