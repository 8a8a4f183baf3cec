"""Long-polling the inspection endpoints: `after` skips what was seen, `wait` holds the request."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.sandbox.conftest import ACCOUNT_SID, AUTH_TOKEN, SMS_FROM

MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
CASE = {"case_ref": "alert-lp", "customer_id": "cust-0001", "outcome": "genuine"}


async def send_sms(sandbox: httpx.AsyncClient, to: str, body: str) -> None:
    response = await sandbox.post(
        MESSAGES,
        data={"To": to, "From": SMS_FROM, "Body": body},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
    )
    assert response.status_code == 201, response.text


async def test_outbox_wait_returns_as_soon_as_a_message_arrives(
    sandbox: httpx.AsyncClient,
) -> None:
    await send_sms(sandbox, "+12025550101", "first")
    params = {"to": "+12025550101", "after": 1, "wait": 10}
    waiting = asyncio.create_task(sandbox.get("/__sandbox/sms/outbox", params=params))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # nothing past the first message yet
    started = time.monotonic()
    await send_sms(sandbox, "+12025550102", "to someone else")
    await send_sms(sandbox, "+12025550101", "second")
    response = await waiting

    assert time.monotonic() - started < 5
    assert [m["body"] for m in response.json()] == ["second"]


async def test_outbox_wait_gives_up_after_the_wait_with_nothing_new(
    sandbox: httpx.AsyncClient,
) -> None:
    await send_sms(sandbox, "+12025550101", "only")
    started = time.monotonic()
    response = await sandbox.get(
        "/__sandbox/sms/outbox", params={"to": "+12025550101", "after": 1, "wait": 0.5}
    )
    assert response.json() == []
    assert 0.4 < time.monotonic() - started < 5
    # Without `after` and `wait` the whole list comes back at once, as before.
    whole = await sandbox.get("/__sandbox/sms/outbox", params={"to": "+12025550101"})
    assert [m["body"] for m in whole.json()] == ["only"]


async def test_calls_wait_by_idempotency_key(sandbox: httpx.AsyncClient) -> None:
    params = {"system": "fraud", "idempotency_key": "lp-key", "wait": 10}
    waiting = asyncio.create_task(sandbox.get("/__sandbox/calls", params=params))
    await asyncio.sleep(0.3)
    other = await sandbox.post("/fraud/cases", json=CASE, headers={"Idempotency-Key": "other"})
    assert other.status_code in (200, 201)
    await asyncio.sleep(0.2)
    assert not waiting.done()  # another key's call does not answer this wait
    await sandbox.post("/fraud/cases", json=CASE, headers={"Idempotency-Key": "lp-key"})
    calls = (await waiting).json()

    assert [c["idempotency_key"] for c in calls] == ["lp-key"]


async def test_wait_beyond_the_limit_is_refused(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.get("/__sandbox/calls", params={"wait": 31})
    assert response.status_code == 422
    response = await sandbox.get("/__sandbox/sms/outbox", params={"after": -1})
    assert response.status_code == 422
