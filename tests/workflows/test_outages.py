"""Nothing lost, nothing stuck: dependencies down for longer than the old retry budgets.

Each test runs the real activities over a database (or CRM) that is down for 11 minutes or
3 days of server time: the workflow keeps running, says what it waits for, catches up when
the dependency returns, and loses nothing.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.converter import default as default_converter

from fiflow.domain.alerts import AlertOutcome
from fiflow.domain.interactions import EventType
from fiflow.domain.keys import address_hash, follow_up_workflow_id
from fiflow.integrations.database import create_db_engine
from fiflow.integrations.interactions_store import InteractionStore
from fiflow.integrations.optouts import OptOutStore
from tests.workflows.harness import Harness, alert_request, code_in, poll, poll_async, sms_customer
from tests.workflows.interaction_harness import InteractionHarness
from tests.workflows.outage import database_outage
from tests.workflows.test_follow_ups import follow_up_input, noon_tomorrow

OLD_QUICK_BUDGET = timedelta(minutes=11)  # QUICK gave up after 10 minutes
THREE_DAYS = timedelta(days=3)


def own_store(ih: InteractionHarness) -> InteractionStore:
    """The context store over the test's own engine (the worker's one is the one down)."""
    return InteractionStore(create_db_engine(ih.settings.database_url))


async def current_details(handle: WorkflowHandle[Any, Any]) -> str:
    """What the Web UI shows as the run's current details."""
    meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return meta.current_details


async def test_a_stop_during_a_three_day_database_outage_is_kept_and_honoured(
    h: Harness,
) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    digest = address_hash(h.settings.address_hash_key.get_secret_value(), phone)
    store = OptOutStore(create_db_engine(h.settings.database_url))  # not the worker's engine
    first = await h.start(alert_request(customer, merchant="ACME Inc"))
    [alert_sms] = await h.wait_for_sms(phone, 1)
    conversation = h.client.get_workflow_handle(h.conversation_id(phone))

    with database_outage(h.engine) as refused:
        await h.reply(phone, "STOP")
        snap = await poll_async(
            lambda: h.snapshot(phone), lambda s: s.messages_handled == 1 and bool(refused)
        )
        assert snap.sms_opted_out is True
        assert snap.opt_out_writes_pending == 1
        assert "opt-out not yet stored" in await current_details(conversation)

        # The conversation still routes replies while its write waits ...
        await h.reply(phone, f"YES {code_in(alert_sms)}")
        confirmed = await h.finish(first)
        assert confirmed.outcome is AlertOutcome.CONFIRM
        assert [c.body["outcome"] for c in h.office.of("fraud")] == ["genuine"]
        # ... and the alert that was open when STOP came sends no "confirmed" text.
        [notice] = [a for a in confirmed.actions if a.step.startswith("notify_customer")]
        assert (notice.outcome, notice.detail) == ("skipped", "address opted out")

        # An alert registered meanwhile texts nobody: the rules' no-channel callback instead.
        second = await h.finish(await h.start(alert_request(customer, merchant="Corner Cafe")))
        assert second.outcome is AlertOutcome.NO_CHANNEL
        assert [c.body["reason"] for c in h.office.of("contact_center")] == [
            "fraud_alert_no_channel"
        ]

        await h.skip(THREE_DAYS)
        assert (await conversation.describe()).status is WorkflowExecutionStatus.RUNNING
        assert "opt-out not yet stored" in await current_details(conversation)
        assert not store.is_opted_out(digest)
        assert len(h.office.sms_to(phone)) == 1  # the first alert only: nothing since STOP

    # The database is back: the next retry (at most 5 minutes away) stores the opt-out.
    await h.skip(timedelta(minutes=6))
    await poll(lambda: store.is_opted_out(digest), bool)
    texts = await h.wait_for_sms(phone, 2)
    assert "unsubscribed" in texts[1]  # the carrier-required confirmation, once
    snap = await poll_async(lambda: h.snapshot(phone), lambda s: s.opt_out_writes_pending == 0)
    assert "not yet stored" not in await current_details(conversation)
    assert (await conversation.describe()).status is WorkflowExecutionStatus.RUNNING
    assert len(h.office.sms_to(phone)) == 2


async def test_an_alert_whose_crm_stays_down_past_the_budget_calls_back(h: Harness) -> None:
    customer = h.add(sms_customer())
    h.office.failures["crm"] = 10**6  # down for as long as the read keeps asking
    handle = await h.start(alert_request(customer))
    status = await h.skip_to_end(handle)
    assert status.outcome is AlertOutcome.NO_CHANNEL
    assert "customer profile unavailable (CRM down past its retry budget)" in status.path
    assert [a.step for a in status.actions][:1] == ["get_customer"]
    assert [c.body for c in h.office.of("contact_center")] == [
        {"reason": "fraud_alert_no_channel", "priority": "high"}
    ]
    assert [c.body["outcome"] for c in h.office.of("fraud")] == ["no_response"]
    assert h.office.sms == []
    # Started as "awaiting_reply" (free, with the start), it shows "starting" while its
    # preparation goes step by step, so ops don't see an unsent alert as sent.
    assert await alert_states(handle) == ["awaiting_reply", "starting", "no_channel"]


async def alert_states(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The AlertState search attribute as the alert's history sets it: start, then upserts."""
    states = []
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_started_event_attributes"):
            fields = event.workflow_execution_started_event_attributes.search_attributes
        elif event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
        else:
            continue
        if "AlertState" in fields.indexed_fields:
            states.append(
                default_converter().payload_converter.from_payload(
                    fields.indexed_fields["AlertState"], str
                )
            )
    return states


async def test_an_interaction_outlives_an_eleven_minute_context_store_outage(
    ih: InteractionHarness,
) -> None:
    customer = ih.customer()
    cid = customer.customer_id
    iid = f"ivr-{uuid.uuid4().hex[:10]}"
    with database_outage(ih.engine) as refused:
        handle = await ih.send(iid, cid, "e1", EventType.MENU_SELECTED, topic="billing")
        await poll(lambda: refused, bool)
        await ih.send(iid, cid, "e2", EventType.MENU_SELECTED, topic="billing")
        # The earlier-interactions read gives up after its budget (the flow lives without
        # it); the record it cannot live without keeps waiting, and says so.
        await ih.env.sleep(OLD_QUICK_BUDGET)
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        await poll_async(
            lambda: current_details(handle),
            lambda d: "interaction record (open) not yet stored" in d,
        )
        assert own_store(ih).get_interaction(iid) is None
    await ih.send(iid, cid, "e3", EventType.INTERACTION_ENDED, outcome="done")
    status = await ih.finish(handle)
    assert [e.event_id for e in status.events] == ["e1", "e2", "e3"]
    record = ih.store.get_interaction(iid)
    assert record is not None and record.status == "closed"
    assert record.summary is not None and record.summary["events"] == 3


async def test_a_follow_up_registration_waits_for_the_context_store(
    ih: InteractionHarness,
) -> None:
    customer = ih.customer()
    inp = await follow_up_input(ih, customer, await noon_tomorrow(ih))
    with database_outage(ih.engine) as refused:
        handle = await ih.follow_up(inp)
        await poll(lambda: refused, bool)
        await ih.env.sleep(OLD_QUICK_BUDGET)
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        assert "follow-up registration (waiting) not yet stored" in await current_details(handle)
        assert own_store(ih).waiting_follow_ups(customer.customer_id) == []
    await ih.env.sleep(timedelta(minutes=6))
    await poll(lambda: ih.store.waiting_follow_ups(customer.customer_id), bool)
    assert ih.store.waiting_follow_ups(customer.customer_id) == [inp.follow_up_id]
    assert handle.id == follow_up_workflow_id(inp.follow_up_id)
