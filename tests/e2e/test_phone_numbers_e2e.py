"""Phone numbers on `fiflow up`: one E.164 form from the CRM, the webhook and the API alike."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from temporalio.client import Client

from fiflow.domain.keys import address_hash, conversation_workflow_id
from fiflow.integrations.settings import LOCAL_ADDRESS_HASH_KEY, LOCAL_SMS_AUTH_TOKEN
from fiflow.integrations.twilio_signature import compute_signature
from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import CHANNEL_KEY, RunningStack
from tests.e2e.test_alerts_e2e import (
    alert,
    alert_body,
    alert_with_its_sms,
    outbox,
    post_alert,
)
from tests.e2e.test_api_bad_input import assert_error
from tests.e2e.waiting import eventually

E164 = "+12025550107"  # how the SMS provider writes cust-0007's number
INVALID = "+15550000001"  # area code 555 does not exist


async def _inbound(http: httpx.AsyncClient, stack: RunningStack, sender: str, body: str) -> None:
    r = await http.post(
        f"{stack.sandbox}/__sandbox/sms/inbound", json={"from": sender, "body": body}
    )
    assert r.status_code == 200 and r.json()["webhook_status"] == 200, r.text


async def _conversations(temporal: Client, phone: str) -> list[str]:
    conv = conversation_workflow_id("sms", address_hash(LOCAL_ADDRESS_HASH_KEY, phone))
    return [w.id async for w in temporal.list_workflows(f"WorkflowId = '{conv}'")]


async def test_a_crm_number_with_dashes_and_its_e164_form_share_conversation_and_opt_out(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, temporal: Client
) -> None:
    customer = pool.formatted_phone_customer()
    assert customer["phone"] == "+1 202-555-0107"  # as the CRM record writes it

    # The alert texts the E.164 form of the CRM's number...
    alert_id, _, code = await alert_with_its_sms(http, stack, customer)
    [sent] = await outbox(http, stack, E164)
    assert sent["to"] == E164

    # ...and the customer's reply, which the provider reports in E.164, reaches that alert.
    await _inbound(http, stack, E164, f"NO {code}")
    done = await eventually(
        lambda: alert(http, stack, alert_id), lambda a: a["run_status"] == "completed"
    )
    assert done["status"]["state"] == "contested"
    assert done["status"]["reply"]["routed_by"] == f"reply code {code}"
    assert len(await _conversations(temporal, E164)) == 1
    assert await _conversations(temporal, customer["phone"]) == await _conversations(temporal, E164)

    # A STOP from the E.164 number opts out the number the CRM writes with dashes.
    await _inbound(http, stack, E164, "STOP")
    texts = await eventually(lambda: outbox(http, stack, E164), lambda m: len(m) == 3)
    second = await post_alert(http, stack, alert_body(customer, merchant="Second Shop"))
    finished = await eventually(
        lambda: alert(http, stack, second), lambda a: a["run_status"] == "completed"
    )
    skipped = [a for a in finished["status"]["actions"] if a["action"].startswith("send_sms:")]
    assert skipped and all(a["detail"] == "address opted out" for a in skipped), skipped
    assert await outbox(http, stack, E164) == texts  # nothing more was texted


async def test_an_invalid_sender_is_refused_with_a_json_code(
    stack: RunningStack, http: httpx.AsyncClient
) -> None:
    url = f"{stack.api}/v1/channels/sms/inbound"
    form = {"From": INVALID, "To": "+15550100000", "Body": "STOP", "MessageSid": "SMbadfrom1",
            "AccountSid": "AC00000000000000000000000000000001"}  # fmt: skip
    signed = compute_signature(LOCAL_SMS_AUTH_TOKEN, url, form)
    r = await http.post(url, data=form, headers={"X-Twilio-Signature": signed})
    body = assert_error(r, 422, "invalid_phone_number")
    assert "From" in body["message"] and "5550000001" not in r.text

    # The same through the sandbox's gateway, as a real provider would deliver it.
    r = await http.post(
        f"{stack.sandbox}/__sandbox/sms/inbound", json={"from": INVALID, "body": "STOP"}
    )
    assert r.status_code == 200 and r.json()["webhook_status"] == 422, r.text
    assert '"invalid_phone_number"' in r.json()["webhook_body"]


async def test_an_invalid_caller_is_refused_and_starts_nothing(
    stack: RunningStack, http: httpx.AsyncClient, temporal: Client
) -> None:
    body = {
        "event_id": "ev-badcaller-1",
        "caller": INVALID,
        "channel": "ivr",
        "type": "interaction_started",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    r = await http.post(
        f"{stack.api}/v1/interactions/ia-badcaller-1/events", json=body, headers=CHANNEL_KEY
    )
    answer = assert_error(r, 422, "invalid_request")
    assert "caller" in answer["message"] and "5550000001" not in r.text
    found = [w async for w in temporal.list_workflows("WorkflowId = 'interaction-ia-badcaller-1'")]
    assert found == []
