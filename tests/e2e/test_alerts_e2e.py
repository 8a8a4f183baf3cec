"""End to end on `fiflow up`: dev server, sandbox, API and workers, all over HTTP."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime

import httpx
from temporalio.client import Client

from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import CHANNEL_KEY, SYSTEM_KEY, RunningStack
from tests.e2e.waiting import eventually

CODE = re.compile(r"Reply YES (\d{4})")


def alert_body(customer: dict, amount: str = "912.00", merchant: str = "ACME Inc") -> dict:
    return {
        "source_event_id": f"evt-{uuid.uuid4().hex[:16]}",
        "customer_id": customer["customer_id"],
        "alert_type": "card_fraud_suspected",
        "transaction": {
            "amount": amount,
            "currency": "USD",
            "merchant": merchant,
            "occurred_at": datetime.now(UTC).isoformat(),
            "card_last4": customer["cards"][0]["last4"],
        },
    }


async def outbox(http: httpx.AsyncClient, stack: RunningStack, phone: str) -> list[dict]:
    r = await http.get(f"{stack.sandbox}/__sandbox/sms/outbox", params={"to": phone})
    r.raise_for_status()
    return r.json()


async def calls(http: httpx.AsyncClient, stack: RunningStack, system: str, alert_id: str) -> list:
    r = await http.get(f"{stack.sandbox}/__sandbox/calls", params={"system": system})
    r.raise_for_status()
    prefix = f"alert-{alert_id}:"
    return [c for c in r.json() if (c.get("idempotency_key") or "").startswith(prefix)]


async def post_alert(http: httpx.AsyncClient, stack: RunningStack, body: dict) -> str:
    r = await http.post(f"{stack.api}/v1/alerts", json=body, headers=SYSTEM_KEY)
    assert r.status_code == 202, r.text
    data = r.json()
    assert data["status_url"] == f"/v1/alerts/{data['alert_id']}"
    return str(data["alert_id"])


async def alert_with_its_sms(
    http: httpx.AsyncClient, stack: RunningStack, customer: dict
) -> tuple[str, str, str]:
    """Post an alert for the customer; its ID, the one SMS it sent and that SMS's reply code."""
    alert_id = await post_alert(http, stack, alert_body(customer))
    [sms] = await eventually(lambda: outbox(http, stack, customer["phone"]), lambda m: len(m) == 1)
    code = CODE.search(sms["body"]).group(1)  # type: ignore[union-attr]
    return alert_id, sms["body"], code


async def alert(http: httpx.AsyncClient, stack: RunningStack, alert_id: str) -> dict:
    r = await http.get(f"{stack.api}/v1/alerts/{alert_id}", headers=SYSTEM_KEY)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_sms_alert_reply_applies_each_action_exactly_once(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool
) -> None:
    customer = pool.take()
    phone = customer["phone"]
    alert_id, sms_body, code = await alert_with_its_sms(http, stack, customer)
    assert f"ACME Inc $912.00 on card ending {customer['cards'][0]['last4']}" in sms_body

    r = await http.post(
        f"{stack.sandbox}/__sandbox/sms/inbound", json={"from": phone, "body": f"NO {code}"}
    )
    assert r.status_code == 200 and r.json()["webhook_status"] == 200, r.text

    done = await eventually(
        lambda: alert(http, stack, alert_id), lambda a: a["run_status"] == "completed"
    )
    status = done["status"]
    assert status["state"] == "contested" and status["channel"] == "sms"
    assert status["reply"]["outcome"] == "contest"
    assert status["reply"]["routed_by"] == f"reply code {code}"

    fraud = await calls(http, stack, "fraud", alert_id)
    card = await calls(http, stack, "card", alert_id)
    callbacks = await calls(http, stack, "contact_center", alert_id)
    assert [c["body"]["outcome"] for c in fraud] == ["fraud"]
    assert [c["path"] for c in card] == ["/cards/block"]
    assert [c["body"]["priority"] for c in callbacks] == ["high"]
    texts = await outbox(http, stack, phone)
    assert len(texts) == 2 and "we've blocked card" in texts[1]["body"]
    # The API's check read the customer's profile once, and the alert took it along: its
    # preparation read the CRM no second time.
    r = await http.get(f"{stack.sandbox}/__sandbox/calls", params={"system": "crm"})
    r.raise_for_status()
    reads = [c for c in r.json() if c["path"].endswith(f"/customers/{customer['customer_id']}")]
    assert len(reads) == 1, reads


async def test_fifty_concurrent_posts_of_one_event_make_one_alert(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, temporal: Client
) -> None:
    customer = pool.take()
    body = alert_body(customer)
    responses = await asyncio.gather(
        *(http.post(f"{stack.api}/v1/alerts", json=body, headers=SYSTEM_KEY) for _ in range(50))
    )
    assert {r.status_code for r in responses} == {202}
    ids = {r.json()["alert_id"] for r in responses}
    assert len(ids) == 1
    [alert_id] = ids

    await eventually(lambda: outbox(http, stack, customer["phone"]), lambda m: len(m) >= 1)
    await asyncio.sleep(1.0)  # room for any duplicate to show up
    assert len(await outbox(http, stack, customer["phone"])) == 1
    runs = [w async for w in temporal.list_workflows(f"WorkflowId = 'alert-{alert_id}'")]
    assert len(runs) == 1

    again = await http.post(f"{stack.api}/v1/alerts", json=body, headers=SYSTEM_KEY)
    assert again.json()["alert_id"] == alert_id


async def test_push_customer_confirms_from_the_app(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool
) -> None:
    customer = pool.take(push=True)
    alert_id = await post_alert(http, stack, alert_body(customer))

    async def pushes() -> list:
        r = await http.get(
            f"{stack.sandbox}/__sandbox/push/outbox",
            params={"device_id": customer["push_device_id"]},
        )
        return list(r.json())

    [push] = await eventually(pushes, lambda p: len(p) == 1)
    device = customer["push_device_id"]
    token = push["data"]["reply_token"]  # what the app received with the push
    reply = {"alert_id": alert_id, "action": "confirm", "device_id": device, "token": token}
    wrong = await http.post(f"{stack.api}/v1/channels/push/replies", json=reply, headers=SYSTEM_KEY)
    assert wrong.status_code == 403 and wrong.json()["code"] == "forbidden"
    # A forged token, or the right one from another device, changes nothing.
    for forged in ({**reply, "token": token[::-1]}, {**reply, "device_id": "dev-elsewhere"}):
        r = await http.post(
            f"{stack.api}/v1/channels/push/replies", json=forged, headers=CHANNEL_KEY
        )
        assert (r.status_code, r.json()["code"]) == (403, "invalid_push_token")
    seen = await alert(http, stack, alert_id)
    assert seen["status"]["reply"] is None and seen["status"]["state"] == "awaiting_reply"
    assert seen["status"]["pushed_to"] == [device]

    r = await http.post(f"{stack.api}/v1/channels/push/replies", json=reply, headers=CHANNEL_KEY)
    assert r.status_code == 202, r.text
    done = await eventually(
        lambda: alert(http, stack, alert_id), lambda a: a["run_status"] == "completed"
    )
    assert done["status"]["state"] == "confirmed"
    assert done["status"]["reply"]["channel"] == "push"
    assert [c["body"]["outcome"] for c in await calls(http, stack, "fraud", alert_id)] == [
        "genuine"
    ]
    late = await http.post(
        f"{stack.api}/v1/channels/push/replies",
        json={**reply, "action": "contest"},
        headers=CHANNEL_KEY,
    )
    assert late.status_code == 409 and late.json()["code"] == "alert_closed"
    assert await outbox(http, stack, customer["phone"]) == []


async def test_back_office_outage_delays_actions_but_loses_and_repeats_none(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool
) -> None:
    customer = pool.take()
    phone = customer["phone"]
    alert_id, _, code = await alert_with_its_sms(http, stack, customer)

    # The fraud system hangs past the activity's 10 s timeout (and applies the request late);
    # the card system answers 500 three times.
    for fault in (
        {"system": "fraud", "error_rate": 0.0, "latency_ms": 11_000},
        {"system": "card", "error_rate": 1.0, "status_code": 500, "remaining": 3},
    ):
        r = await http.post(f"{stack.sandbox}/__sandbox/faults", json=fault)
        assert r.status_code == 200, r.text
    try:
        await http.post(
            f"{stack.sandbox}/__sandbox/sms/inbound", json={"from": phone, "body": f"no {code}"}
        )
        await eventually(lambda: calls(http, stack, "fraud", alert_id), bool, within=30)
        assert (await alert(http, stack, alert_id))["status"]["state"] == "applying"
    finally:
        await http.delete(f"{stack.sandbox}/__sandbox/faults", params={"system": "fraud"})

    done = await eventually(
        lambda: alert(http, stack, alert_id),
        lambda a: a["run_status"] == "completed",
        within=60,
    )
    assert done["status"]["state"] == "contested"
    assert [a["status"] for a in done["status"]["actions"]].count("failed") == 0

    fraud = await calls(http, stack, "fraud", alert_id)
    # Several attempts reached the fraud system; it applied the first and replayed the rest.
    assert len(fraud) >= 2
    assert [c["replayed"] for c in fraud] == [False] + [True] * (len(fraud) - 1)
    card = await calls(http, stack, "card", alert_id)
    assert [c["fault"] for c in card] == [True, True, True, False]
    assert len(await calls(http, stack, "contact_center", alert_id)) == 1
