"""Bad input to the API: a 4xx with a JSON code and message; nothing started, nothing signalled."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from temporalio.client import Client

from fiflow.domain.keys import address_hash, conversation_workflow_id
from fiflow.integrations.settings import LOCAL_ADDRESS_HASH_KEY, LOCAL_SMS_AUTH_TOKEN
from fiflow.integrations.twilio_signature import compute_signature
from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import CHANNEL_KEY, REVIEWER_KEY, SYSTEM_KEY, RunningStack
from tests.e2e.test_alerts_e2e import alert_body

JSON = {"content-type": "application/json"}


async def alert_count(temporal: Client) -> int:
    return (await temporal.count_workflows("WorkflowType = 'FraudAlertWorkflow'")).count


def assert_error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return dict(body)


@pytest.fixture
async def before(temporal: Client) -> int:
    return await alert_count(temporal)


async def test_alert_requests_that_are_refused(
    stack: RunningStack,
    http: httpx.AsyncClient,
    pool: CustomerPool,
    temporal: Client,
    before: int,
) -> None:
    url = f"{stack.api}/v1/alerts"
    good = alert_body(pool.take())

    r = await http.post(url, content=b'{"source_event_id": "x", ', headers={**JSON, **SYSTEM_KEY})
    assert_error(r, 400, "malformed_json")

    missing = {k: v for k, v in good.items() if k != "customer_id"}
    body = assert_error(
        await http.post(url, json=missing, headers=SYSTEM_KEY), 422, "invalid_request"
    )
    assert "customer_id" in body["message"]

    wrong_type = {**good, "transaction": {**good["transaction"], "amount": "lots"}}
    body = assert_error(
        await http.post(url, json=wrong_type, headers=SYSTEM_KEY), 422, "invalid_request"
    )
    assert body["details"][0]["field"] == "transaction.amount"
    assert "lots" not in json.dumps(body)  # submitted values are not echoed back

    for bad_amount in ("-5.00", "0", "1.234"):
        bad = {**good, "transaction": {**good["transaction"], "amount": bad_amount}}
        assert_error(await http.post(url, json=bad, headers=SYSTEM_KEY), 422, "invalid_request")

    pii_id = {**good, "source_event_id": "call +1 555 000 0001"}
    assert_error(await http.post(url, json=pii_id, headers=SYSTEM_KEY), 422, "invalid_request")

    unknown = {**good, "customer_id": "cust-9999"}
    body = assert_error(
        await http.post(url, json=unknown, headers=SYSTEM_KEY), 422, "unknown_customer"
    )
    assert "cust-9999" in body["message"]

    wrong_card = {**good, "transaction": {**good["transaction"], "card_last4": "0000"}}
    assert_error(await http.post(url, json=wrong_card, headers=SYSTEM_KEY), 422, "unknown_card")

    kind = {**good, "alert_type": "crypto_weirdness"}
    body = assert_error(
        await http.post(url, json=kind, headers=SYSTEM_KEY), 422, "unknown_alert_type"
    )
    assert "card_fraud_suspected" in body["message"]

    huge = {**good, "padding": "x" * 100_000}
    assert_error(await http.post(url, json=huge, headers=SYSTEM_KEY), 413, "body_too_large")

    assert_error(await http.post(url, json=good), 401, "unauthorized")
    assert_error(
        await http.post(url, json=good, headers={"X-API-Key": "nope"}), 401, "unauthorized"
    )
    assert_error(await http.post(url, json=good, headers=CHANNEL_KEY), 403, "forbidden")

    assert await alert_count(temporal) == before
    # And the same body, correctly sent, is accepted.
    assert (await http.post(url, json=good, headers=SYSTEM_KEY)).status_code == 202


async def test_unknown_alerts_and_push_replies(
    stack: RunningStack, http: httpx.AsyncClient, temporal: Client, before: int
) -> None:
    missing = f"al-{uuid.uuid4().hex[:24]}"
    r = await http.get(f"{stack.api}/v1/alerts/{missing}", headers=REVIEWER_KEY)
    assert_error(r, 404, "alert_not_found")
    r = await http.get(f"{stack.api}/v1/alerts/{missing}")
    assert_error(r, 401, "unauthorized")

    url = f"{stack.api}/v1/channels/push/replies"
    unbound = {"alert_id": missing, "action": "confirm", "device_id": "dev-x", "token": "t"}
    r = await http.post(url, json=unbound, headers=CHANNEL_KEY)
    assert_error(r, 403, "invalid_push_token")
    r = await http.post(url, json={"alert_id": missing, "action": "confirm"}, headers=CHANNEL_KEY)
    assert_error(r, 422, "invalid_request")
    r = await http.post(url, json={"alert_id": missing, "action": "maybe"}, headers=CHANNEL_KEY)
    assert_error(r, 422, "invalid_request")
    r = await http.post(
        url, json={"alert_id": missing, "action": "confirm"}, headers={"X-API-Key": "x"}
    )
    assert_error(r, 401, "unauthorized")
    assert_error(await http.get(f"{stack.api}/v1/nothing-here"), 404, "not_found")
    assert await alert_count(temporal) == before


async def test_forged_or_unsigned_sms_webhook_is_refused(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, temporal: Client
) -> None:
    phone = pool.take()["phone"]
    url = f"{stack.api}/v1/channels/sms/inbound"
    form = {"From": phone, "To": "+15550100000", "Body": "STOP", "MessageSid": "SMforged1",
            "AccountSid": "AC00000000000000000000000000000001"}  # fmt: skip

    assert_error(await http.post(url, data=form), 403, "invalid_signature")
    forged = compute_signature("not-the-token", url, form)
    r = await http.post(url, data=form, headers={"X-Twilio-Signature": forged})
    assert_error(r, 403, "invalid_signature")
    # Signed correctly, then tampered with.
    signed = compute_signature(LOCAL_SMS_AUTH_TOKEN, url, form)
    r = await http.post(url, data={**form, "Body": "START"}, headers={"X-Twilio-Signature": signed})
    assert_error(r, 403, "invalid_signature")

    conv = conversation_workflow_id("sms", address_hash(LOCAL_ADDRESS_HASH_KEY, phone))
    found = [w async for w in temporal.list_workflows(f"WorkflowId = '{conv}'")]
    assert found == []
    r = await http.get(f"{stack.sandbox}/__sandbox/sms/outbox", params={"to": phone})
    assert r.json() == []

    # The genuine request goes through.
    r = await http.post(url, data=form, headers={"X-Twilio-Signature": signed})
    assert r.status_code == 200 and "<Response>" in r.text


async def test_health_and_openapi_are_open(stack: RunningStack, http: httpx.AsyncClient) -> None:
    r = await http.get(f"{stack.api}/healthz")
    assert r.json() == {"status": "ok", "temporal": "ok"}
    spec = (await http.get(f"{stack.api}/openapi.json")).json()
    assert "/v1/alerts" in spec["paths"] and "/v1/channels/sms/inbound" in spec["paths"]
