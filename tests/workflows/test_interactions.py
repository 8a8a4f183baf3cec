"""InteractionWorkflow on the time-skipping server: each trigger kind, closing, stragglers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import yaml
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from fiflow.domain.alerts import Transaction
from fiflow.domain.credit import CustomerSummary, Product
from fiflow.domain.credit_prefill import PrefillStatus
from fiflow.domain.interactions import (
    MAX_EVENTS,
    EventType,
    InteractionChannel,
    InteractionEvent,
    InteractionState,
)
from fiflow.domain.keys import alert_workflow_id, follow_up_workflow_id, prefill_workflow_id
from tests.workflows.credit_harness import statement_rows
from tests.workflows.harness import poll
from tests.workflows.interaction_harness import (
    InteractionHarness,
    rules_copy,
    running_interaction_harness,
)


def new_id() -> str:
    return f"ivr-{uuid.uuid4().hex[:10]}"


async def test_a_card_dispute_starts_a_fraud_alert_for_the_last_transaction(
    ih: InteractionHarness,
) -> None:
    customer = ih.customer()
    cid = customer.customer_id
    ih.office.transactions[cid] = [
        Transaction(
            amount=Decimal("84.20"),
            currency="USD",
            merchant="Corner Grocer",
            occurred_at=datetime(2026, 11, 24, 18, 0, tzinfo=UTC),
            card_last4="4242",
        )
    ]
    iid = new_id()
    handle = await ih.send(iid, cid, "e1", EventType.INTERACTION_STARTED)
    await ih.send(iid, cid, "e2", EventType.MENU_SELECTED, topic="card")
    await ih.send(iid, cid, "e3", EventType.KEYWORD_DETECTED, keyword="Dispute")

    status = await ih.status(handle, lambda s: bool(s.fired) and len(s.fired[0].actions) == 2)

    [fired] = status.fired
    assert [a.action for a in status.next_actions] == ["confirm_last_transaction"]
    started = fired.actions[1]
    assert started["outcome"] == "started"
    alert = ih.client.get_workflow_handle(alert_workflow_id(started["alert_id"]))
    desc = await alert.describe()
    assert desc.workflow_type == "FraudAlertWorkflow"
    [sms] = await _sms(ih, customer.phone)
    assert "Corner Grocer $84.20 on card ending 4242" in sms
    # The same trigger does not fire twice in one interaction.
    await ih.send(iid, cid, "e4", EventType.KEYWORD_DETECTED, keyword="dispute")
    status = await ih.status(handle, lambda s: len(s.events) == 4)
    assert [f.trigger_id for f in status.fired] == ["card_dispute"]


async def test_a_repeat_caller_whose_self_service_failed_gets_priority_and_a_follow_up(
    ih: InteractionHarness,
) -> None:
    customer = ih.customer()
    cid = customer.customer_id
    ih.prior(cid, "ivr-earlier", "tech_support", datetime.now(UTC) - timedelta(days=2))
    iid = new_id()
    handle = await ih.send(iid, cid, "e1", EventType.MENU_SELECTED, topic="tech_support")
    await ih.send(iid, cid, "e2", EventType.SELF_SERVICE_FAILED, topic="tech_support")

    status = await ih.status(handle, lambda s: bool(s.fired) and len(s.fired[0].actions) == 2)

    assert [a.action for a in status.next_actions] == ["priority_routing"]
    assert status.repeat_of == ["ivr-earlier"]
    started = status.fired[0].actions[1]
    assert started["outcome"] == "started"
    assert [t.subject for t in ih.office.tickets.values()] == [
        "Technical problem still open after self-service failed"
    ]
    follow_up = ih.client.get_workflow_handle(follow_up_workflow_id(started["follow_up_id"]))
    assert (await follow_up.describe()).status is WorkflowExecutionStatus.RUNNING


async def test_a_caller_whose_call_dropped_and_who_calls_straight_back_is_a_repeat_caller(
    ih: InteractionHarness,
) -> None:
    customer = ih.customer()
    cid = customer.customer_id
    first = new_id()
    dropped = await ih.send(first, cid, "d1", EventType.SELF_SERVICE_FAILED, topic="tech_support")
    # The call drops: no interaction_ended, the first interaction is still open. Its reason
    # is in the context store already.
    await poll(
        lambda: getattr(ih.store.get_interaction(first), "reason", None),
        lambda reason: reason == "tech_support",
    )
    second = new_id()
    handle = await ih.send(second, cid, "d2", EventType.MENU_SELECTED, topic="tech_support")
    await ih.send(second, cid, "d3", EventType.SELF_SERVICE_FAILED, topic="tech_support")

    status = await ih.status(handle, lambda s: bool(s.fired))
    assert status.repeat_of == [first]
    assert [a.action for a in status.next_actions] == ["priority_routing"]
    assert (await dropped.describe()).status is WorkflowExecutionStatus.RUNNING


async def test_a_first_time_caller_or_another_reason_is_not_a_repeat_caller(
    ih: InteractionHarness,
) -> None:
    customer = ih.customer()
    cid = customer.customer_id
    ih.prior(cid, "ivr-other", "billing", datetime.now(UTC) - timedelta(days=1))
    ih.prior(cid, "ivr-old", "tech_support", datetime.now(UTC) - timedelta(days=30))
    iid = new_id()
    handle = await ih.send(iid, cid, "e1", EventType.SELF_SERVICE_FAILED, topic="tech_support")
    await ih.send(iid, cid, "e2", EventType.INTERACTION_ENDED)

    result = await ih.finish(handle)

    assert result.fired == [] and result.next_actions == []
    assert ih.office.tickets == {}


async def test_self_service_not_followed_by_success_fires_when_the_window_passes(
    ih: InteractionHarness,
) -> None:
    customer = ih.customer()
    iid = new_id()
    handle = await ih.send(iid, customer.customer_id, "e1", EventType.SELF_SERVICE_ATTEMPTED)
    await ih.status(handle, lambda s: len(s.events) == 1)
    await ih.env.sleep(timedelta(minutes=9))
    early = await ih.status(handle, lambda s: True)
    assert early.fired == []

    await ih.env.sleep(timedelta(minutes=2))
    status = await ih.status(handle, lambda s: bool(s.fired))

    assert [f.trigger_id for f in status.fired] == ["self_service_abandoned"]
    assert [a.action for a in status.next_actions] == ["offer_agent"]


async def test_success_in_time_keeps_the_absence_trigger_quiet(ih: InteractionHarness) -> None:
    customer = ih.customer()
    iid = new_id()
    handle = await ih.send(iid, customer.customer_id, "e1", EventType.SELF_SERVICE_ATTEMPTED)
    await ih.send(iid, customer.customer_id, "e2", EventType.SELF_SERVICE_SUCCEEDED)
    await ih.send(iid, customer.customer_id, "e3", EventType.INTERACTION_ENDED)

    result = await ih.finish(handle)

    assert result.fired == []
    assert result.outcome == "resolved"


async def test_three_menu_loops_within_five_minutes_offer_an_agent_and_note_crm(
    ih: InteractionHarness,
) -> None:
    customer = ih.customer()
    iid = new_id()
    handle = await ih.send(iid, customer.customer_id, "e1", EventType.MENU_SELECTED, menu="main")
    await ih.send(iid, customer.customer_id, "e2", EventType.MENU_SELECTED, menu="main")
    early = await ih.status(handle, lambda s: len(s.events) == 2)
    assert early.fired == []
    await ih.send(iid, customer.customer_id, "e3", EventType.MENU_SELECTED, menu="main")

    status = await ih.status(handle, lambda s: bool(s.fired) and len(s.fired[0].actions) == 2)

    assert [f.trigger_id for f in status.fired] == ["repeated_menu_loops"]
    assert ih.office.notes() == [f"Caller looped through the IVR menus. (interaction {iid})"]


async def test_the_interaction_closes_after_its_grace_period_keeping_stragglers(
    ih: InteractionHarness,
) -> None:
    customer = ih.customer()
    iid = new_id()
    cid = customer.customer_id
    handle = await ih.send(iid, cid, "e1", EventType.MENU_SELECTED, topic="billing")
    await ih.send(iid, cid, "e1", EventType.MENU_SELECTED, topic="billing")  # a retry
    await ih.send(iid, cid, "e2", EventType.INTERACTION_ENDED, outcome="callback_requested")
    ended = await ih.status(handle, lambda s: s.state is InteractionState.ENDED)
    assert ended.ended_at is not None
    # A straggler inside the grace period, stamped before the end event: kept, flagged.
    before = ended.events[0].occurred_at - timedelta(seconds=5)
    await ih.send(iid, cid, "e0", EventType.AGENT_NOTE, occurred_at=before)

    result = await ih.finish(handle)

    assert [e.event_id for e in result.events] == ["e1", "e2", "e0"]
    assert [e.out_of_order for e in result.events] == [False, False, True]
    assert result.state is InteractionState.CLOSED
    assert (result.reason, result.outcome) == ("billing", "callback_requested")
    stored = ih.store.get_interaction(iid)
    assert stored is not None
    assert (stored.status, stored.reason, stored.outcome) == (
        "closed",
        "billing",
        "callback_requested",
    )
    assert stored.ended_at is not None


async def test_an_interaction_nobody_ends_closes_as_abandoned(ih: InteractionHarness) -> None:
    customer = ih.customer()
    handle = await ih.send(new_id(), customer.customer_id, "e1", EventType.INTERACTION_STARTED)

    result = await ih.finish(handle)

    assert (result.state, result.outcome) == (InteractionState.CLOSED, "abandoned")


async def _sms(ih: InteractionHarness, phone: str | None) -> list[str]:
    texts: list[str] = await poll(lambda: ih.office.sms_to(phone or ""), lambda v: len(v) >= 1)
    return texts


async def test_a_trigger_with_hours_fires_only_inside_the_customers_local_hours(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    # Menu loops count only from an hour before to an hour after now, on the local clock.
    rules = rules_copy(tmp_path)
    data = yaml.safe_load((rules / "triggers.yaml").read_text())
    now = datetime.now(UTC)
    loops = next(t for t in data["triggers"] if t["id"] == "repeated_menu_loops")
    loops["only_during"] = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
    }
    (rules / "triggers.yaml").write_text(yaml.safe_dump(data))

    async with running_interaction_harness(time_skipping_env, task_queue, tmp_path, rules) as ih:
        here = ih.customer(timezone="UTC")
        far = ih.customer(timezone="Etc/GMT-12")  # twelve hours ahead: outside its hours
        results = {}
        for customer in (here, far):
            iid = new_id()
            handle = None
            for n in range(3):
                handle = await ih.send(iid, customer.customer_id, f"e{n}", EventType.MENU_SELECTED)
            await ih.send(iid, customer.customer_id, "end", EventType.INTERACTION_ENDED)
            assert handle is not None
            results[customer.customer_id] = await ih.finish(handle)

    assert [f.trigger_id for f in results[here.customer_id].fired] == ["repeated_menu_loops"]
    assert results[far.customer_id].fired == []


async def test_asking_about_a_loan_prepares_a_prefilled_application(
    ih: InteractionHarness,
) -> None:
    customer = ih.customer()
    cid = customer.customer_id
    ih.office.summaries[cid] = CustomerSummary(
        customer_id=cid, customer_since=date(2019, 4, 1), accounts=[]
    )
    ih.office.rows[cid] = statement_rows(1, 12)  # average balance 1,550
    iid = new_id()
    handle = await ih.send(
        iid, cid, "e1", EventType.KEYWORD_DETECTED, channel=InteractionChannel.CHAT, keyword="loan"
    )

    status = await ih.status(handle, lambda s: bool(s.fired) and len(s.fired[0].actions) == 2)

    assert [a.action for a in status.next_actions] == ["offer_credit_application"]
    started = status.fired[0].actions[0]
    assert started["prefill_id"] == f"{iid}-loan_interest"
    prefill = ih.client.get_workflow_handle(prefill_workflow_id(started["prefill_id"]))
    result = PrefillStatus.model_validate(await prefill.result())
    assert result.state == "ready" and result.prefill is not None
    assert result.prefill.product is Product.PERSONAL_LOAN
    assert result.prefill.suggested_amount == Decimal("4600")  # 3 x 1,550, to the hundred
    assert result.prefill.term_months == 12
    assert result.prefill.customer_since == date(2019, 4, 1)
    # A pre-fill never pulls credit: that needs the applicant's consent when they apply.
    assert ih.office.pulls == []


async def test_past_the_event_cap_only_the_end_of_the_call_still_counts(
    ih: InteractionHarness,
) -> None:
    customer = ih.customer()
    iid = new_id()
    handle = await ih.send(iid, customer.customer_id, "c0", EventType.MENU_SELECTED)
    now = datetime.now(UTC)
    events = [
        InteractionEvent(
            event_id=f"c{n}",
            channel=InteractionChannel.IVR,
            type=EventType.MENU_SELECTED,
            occurred_at=now,
            accepted_at=now,
        )
        for n in range(1, MAX_EVENTS + 5)  # a few past the cap
    ]
    await asyncio.gather(*(handle.signal("event", e) for e in events))
    end = InteractionEvent(
        event_id="the-end",
        channel=InteractionChannel.IVR,
        type=EventType.INTERACTION_ENDED,
        occurred_at=now,
        accepted_at=now,
    )
    await handle.signal("event", end)

    result = await ih.finish(handle)
    taken = [e.event_id for e in result.events]
    assert len(taken) == MAX_EVENTS + 1  # the cap, and the end of the call
    assert taken[-1] == "the-end"
    assert result.state is InteractionState.CLOSED and result.outcome != "abandoned"


async def test_a_straggler_delivered_late_does_not_replace_a_newer_reason(
    ih: InteractionHarness,
) -> None:
    customer = ih.customer()
    iid, cid = f"ivr-{uuid.uuid4().hex[:8]}", customer.customer_id
    said_at = datetime.now(UTC)
    menu, earlier = EventType.MENU_SELECTED, said_at - timedelta(minutes=1)
    handle = await ih.send(iid, cid, "s1", menu, occurred_at=said_at, topic="billing")
    # The caller chose card_lost a minute before billing; that event arrives last.
    await ih.send(iid, cid, "s0", menu, occurred_at=earlier, topic="card_lost")
    await ih.send(iid, cid, "s1", menu, occurred_at=said_at, topic="billing")  # a retry

    status = await ih.status(handle, lambda s: len(s.events) == 2)

    assert [(e.event_id, e.out_of_order) for e in status.events] == [("s1", False), ("s0", True)]
    assert status.reason == "billing"
