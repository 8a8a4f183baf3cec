"""A replayed SMS webhook is dropped by the MessageSid ledger, even after its conversation ended."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from temporalio.client import Client, WorkflowExecutionStatus

from fiflow.domain.keys import address_hash, conversation_workflow_id
from fiflow.integrations.settings import LOCAL_ADDRESS_HASH_KEY
from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import RunningStack
from tests.e2e.test_alerts_e2e import outbox
from tests.e2e.waiting import eventually


async def _inbound(http: httpx.AsyncClient, stack: RunningStack, phone: str, sid: str) -> None:
    # The sandbox signs the same form the same way each time: a replay is byte-for-byte equal.
    r = await http.post(
        f"{stack.sandbox}/__sandbox/sms/inbound",
        json={"from": phone, "body": "HELP", "message_sid": sid},
    )
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["message_sid"] == sid
    assert data["webhook_status"] == 200 and "<Response>" in data["webhook_body"], data


async def _runs(temporal: Client, workflow_id: str) -> list[str]:
    return [w.run_id async for w in temporal.list_workflows(f"WorkflowId = '{workflow_id}'")]


async def test_replayed_message_sid_is_dropped_after_its_conversation_ended(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, temporal: Client
) -> None:
    phone = pool.take()["phone"]
    conv = conversation_workflow_id("sms", address_hash(LOCAL_ADDRESS_HASH_KEY, phone))
    sid = f"SM{uuid.uuid4().hex}"

    await _inbound(http, stack, phone, sid)
    await eventually(lambda: outbox(http, stack, phone), lambda m: len(m) == 1)
    [first_run] = await eventually(lambda: _runs(temporal, conv), lambda r: len(r) == 1)

    # Once terminated, the conversation's own memory of the ID is gone: a new run would
    # process the replay as a new message, so only the ledger can drop it.
    handle = temporal.get_workflow_handle(conv)
    await handle.terminate(reason="test: forget the conversation's seen IDs")
    assert (await handle.describe()).status is WorkflowExecutionStatus.TERMINATED

    await _inbound(http, stack, phone, sid)
    await asyncio.sleep(2.0)  # room for a wrongly started run to answer
    assert await _runs(temporal, conv) == [first_run]
    assert (await handle.describe()).status is WorkflowExecutionStatus.TERMINATED
    assert len(await outbox(http, stack, phone)) == 1

    # A new MessageSid from the same number is still processed, by a new conversation run.
    await _inbound(http, stack, phone, f"SM{uuid.uuid4().hex}")
    await eventually(lambda: outbox(http, stack, phone), lambda m: len(m) == 2)
    runs = await _runs(temporal, conv)
    assert len(runs) == 2 and first_run in runs
