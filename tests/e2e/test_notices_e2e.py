"""End to end on `fiflow up`: an informational alert reaches the sandbox's SMS outbox once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
from temporalio.client import Client

from fiflow.domain.feeds.matches import NoticeItem, NoticeRequest, Origin
from fiflow.domain.keys import notice_workflow_id
from fiflow.integrations.alert_starts import NOTICE_WORKFLOW, start_notice
from fiflow.integrations.settings import Settings
from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import RunningStack
from tests.e2e.test_alerts_e2e import outbox
from tests.e2e.waiting import eventually


def international_notice(customer: dict) -> NoticeRequest:
    """A notice of one international purchase on the pool customer's first card, as the
    stream consumer starts one (allowed in quiet hours: whatever the hour in the customer's
    zone while the suite runs)."""
    txn_id = f"txn-{uuid.uuid4().hex[:16]}"
    return NoticeRequest(
        source_event_id=txn_id,
        customer_id=customer["customer_id"],
        alert_type="pref_international",
        items=[
            NoticeItem(
                transaction_id=txn_id,
                reasons=["pref_international"],
                amount="2150.00",
                currency="USD",
                merchant="ACME ONLINE",
                card_last4=customer["cards"][0]["last4"],
                occurred_at=datetime.now(UTC),
            )
        ],
        quiet_hours_ok=True,
        origin=Origin.STREAM,
    )


async def test_a_notice_is_texted_once_and_a_second_start_starts_nothing(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, temporal: Client
) -> None:
    customer = pool.take()
    last4 = customer["cards"][0]["last4"]
    req = international_notice(customer)
    # The stack runs on the local defaults: the same keys and task queue as these settings.
    settings = Settings()

    notice_id = await start_notice(temporal, settings, req, datetime.now(UTC))

    [sms] = await eventually(lambda: outbox(http, stack, customer["phone"]), lambda m: len(m) == 1)
    assert sms["body"] == (
        f"Fiflow Bank: $2,150.00 at ACME ONLINE on card ending {last4} "
        "(international transaction). No reply needed."
    )
    handle = temporal.get_workflow_handle(notice_workflow_id(notice_id))
    result = await asyncio.wait_for(handle.result(), timeout=20)
    assert result["status"] == "sent" and result["message_id"] == sms["sid"]

    again = await start_notice(temporal, settings, req, datetime.now(UTC))

    assert again == notice_id
    runs = [
        w async for w in temporal.list_workflows(f"WorkflowId = '{notice_workflow_id(notice_id)}'")
    ]
    assert [r.workflow_type for r in runs] == [NOTICE_WORKFLOW]
    await asyncio.sleep(1.0)  # room for a duplicate text to show up
    assert len(await outbox(http, stack, customer["phone"])) == 1
