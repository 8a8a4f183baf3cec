"""FollowUpWorkflow on the time-skipping server: every way a follow-up can go."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from fiflow.domain.follow_ups import (
    CustomerInTouch,
    FollowUpInput,
    FollowUpOutcome,
    Reschedule,
    Resolved,
    Ticket,
)
from fiflow.domain.interactions import EventType
from fiflow.workflows.follow_up import FollowUpWorkflow
from tests.workflows.interaction_harness import (
    InteractionHarness,
    rules_copy,
    running_interaction_harness,
)


def at(expected: datetime, actual: datetime) -> bool:
    """The same moment, give or take the few real seconds the activities before it took."""
    return expected <= actual < expected + timedelta(seconds=5)


async def noon_tomorrow(ih: InteractionHarness) -> datetime:
    """Tomorrow 12:00 UTC on the server's clock: inside every test contact window."""
    now = await ih.env.get_current_time()
    return (now + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)


def ticket_for(ih: InteractionHarness, customer_id: str) -> str:
    ticket_id = f"tkt-{uuid.uuid4().hex[:8]}"
    ih.office.tickets[ticket_id] = Ticket(
        ticket_id=ticket_id, customer_id=customer_id, subject="Card reader broken", status="open"
    )
    return ticket_id


async def follow_up_input(ih: InteractionHarness, customer: Any, at: datetime) -> FollowUpInput:
    return FollowUpInput(
        follow_up_id=f"fu-{uuid.uuid4().hex[:10]}",
        customer_id=customer.customer_id,
        ticket_id=ticket_for(ih, customer.customer_id),
        reason="tech_support",
        subject="Card reader broken",
        follow_up_at=at,
        created_at=await ih.env.get_current_time(),
        origin="ivr-origin",
    )


async def test_a_ticket_resolved_while_waiting_ends_it_without_contact(
    ih: InteractionHarness,
) -> None:
    customer = ih.customer()
    inp = await follow_up_input(ih, customer, await noon_tomorrow(ih))
    handle = await ih.follow_up(inp)
    ih.office.resolve(inp.ticket_id)

    result = await ih.finish(handle)

    assert result.outcome is FollowUpOutcome.RESOLVED
    assert result.attempts == [] and ih.office.sms_to(customer.phone) == []
    assert result.ended_at is not None and result.ended_at >= inp.follow_up_at


async def test_a_resolved_signal_stops_it_at_once(ih: InteractionHarness) -> None:
    customer = ih.customer()
    inp = await follow_up_input(ih, customer, await noon_tomorrow(ih))
    handle = await ih.follow_up(inp)
    await handle.signal(FollowUpWorkflow.resolved, Resolved(resolved_by="agent-12"))

    result = await handle.result()

    assert result.outcome is FollowUpOutcome.RESOLVED
    assert result.ended_at is not None and result.ended_at < inp.follow_up_at
    assert "resolved by agent-12" in result.path


async def test_a_customer_who_called_in_since_is_not_chased(ih: InteractionHarness) -> None:
    customer = ih.customer()
    inp = await follow_up_input(ih, customer, await noon_tomorrow(ih))
    handle = await ih.follow_up(inp)
    # The customer calls the next morning: a new interaction in the context store.
    ih.prior(
        customer.customer_id, "ivr-callback", "tech_support", inp.created_at + timedelta(hours=1)
    )

    result = await ih.finish(handle)

    assert result.outcome is FollowUpOutcome.CUSTOMER_IN_TOUCH
    assert ih.office.sms_to(customer.phone) == []


async def test_a_new_interaction_signal_stops_it(ih: InteractionHarness) -> None:
    customer = ih.customer()
    handle = await ih.follow_up(await follow_up_input(ih, customer, await noon_tomorrow(ih)))
    await handle.signal(FollowUpWorkflow.customer_in_touch, CustomerInTouch(interaction_id="c-1"))

    result = await handle.result()

    assert result.outcome is FollowUpOutcome.CUSTOMER_IN_TOUCH


async def test_a_moved_follow_up_contacts_at_the_new_time(ih: InteractionHarness) -> None:
    customer = ih.customer()
    first = await noon_tomorrow(ih)
    inp = await follow_up_input(ih, customer, first)
    handle = await ih.follow_up(inp)
    moved = (first + timedelta(days=2)).replace(hour=10)  # "call me on Friday at 10"
    await handle.signal(FollowUpWorkflow.reschedule, Reschedule(follow_up_at=moved))

    result = await ih.finish(handle)

    assert [r.follow_up_at for r in result.reschedules] == [moved]
    assert at(moved, result.attempts[0].at)
    assert "Card reader broken" in ih.office.sms_to(customer.phone)[0]


async def test_quiet_hours_hold_across_a_daylight_saving_change(ih: InteractionHarness) -> None:
    customer = ih.customer(timezone="America/New_York")
    # Midnight EST on 14 March 2027, the night the clocks go forward: quiet until 08:00
    # local, which that morning is 12:00 UTC (EDT), not 13:00 UTC (EST).
    due = datetime(2027, 3, 14, 5, 0, tzinfo=UTC)
    handle = await ih.follow_up(await follow_up_input(ih, customer, due))

    result = await ih.finish(handle)

    assert at(datetime(2027, 3, 14, 12, 0, tzinfo=UTC), result.attempts[0].at)
    assert any("outside the contact window" in p for p in result.path)


async def test_attempts_run_out_then_it_gives_up_with_a_crm_note(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    rules = rules_copy(
        tmp_path, max_attempts=2, attempt_window="P7D", retry_after="P1D", give_up_after="P5D"
    )
    async with running_interaction_harness(time_skipping_env, task_queue, tmp_path, rules) as ih:
        customer = ih.customer()
        start = await noon_tomorrow(ih)
        handle = await ih.follow_up(await follow_up_input(ih, customer, start))

        result = await ih.finish(handle)

    assert result.outcome is FollowUpOutcome.GAVE_UP
    assert len(result.attempts) == 2
    assert at(start, result.attempts[0].at)
    assert at(start + timedelta(days=1), result.attempts[1].at)
    assert len(ih.office.sms_to(customer.phone)) == 2
    # Each contact's audit record names its channel and the key its SMS carried.
    keys = [m.key for m in ih.office.sms]
    assert [(a.step, a.outcome, a.system, a.idempotency_key) for a in result.attempts] == [
        ("sms", "sent", "sms", keys[0]),
        ("sms", "sent", "sms", keys[1]),
    ]
    assert result.path[-1] == "gave up: attempts used up"
    notes = ih.office.notes()
    assert notes[-1].startswith('Follow-up on "Card reader broken" (tech_support) ended')
    assert [n for n in notes if n.startswith("Follow-up contact")] == [
        f"Follow-up contact {n} by sms about ticket {result.ticket_id}." for n in (1, 2)
    ]


async def test_it_is_abandoned_at_the_final_deadline(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    rules = rules_copy(
        tmp_path, max_attempts=10, attempt_window="P7D", retry_after="P1D", give_up_after="P2D"
    )
    async with running_interaction_harness(time_skipping_env, task_queue, tmp_path, rules) as ih:
        customer = ih.customer()
        start = await noon_tomorrow(ih)
        handle = await ih.follow_up(await follow_up_input(ih, customer, start))

        result = await ih.finish(handle)

    assert result.outcome is FollowUpOutcome.GAVE_UP
    # Day 0 and day 1; the day-2 retry would fall (just) past the two-day deadline.
    assert len(result.attempts) == 2
    assert all(at(start + timedelta(days=d), a.at) for d, a in enumerate(result.attempts))
    assert result.path[-1] == "gave up: deadline"
    assert result.ended_at is not None and result.ended_at >= start + timedelta(days=2)


async def test_a_new_interaction_from_the_customer_stops_waiting_follow_ups_at_once(
    ih: InteractionHarness,
) -> None:
    customer = ih.customer()
    other = ih.customer()
    mine = await ih.follow_up(await follow_up_input(ih, customer, await noon_tomorrow(ih)))
    theirs = await ih.follow_up(await follow_up_input(ih, other, await noon_tomorrow(ih)))
    await ih.status_of(mine, lambda s: s.next_check_at is not None)
    await ih.status_of(theirs, lambda s: s.next_check_at is not None)

    call = await ih.send("ivr-calls-in", customer.customer_id, "e1", EventType.INTERACTION_STARTED)
    result = await mine.result()  # no time skipped: it ends now, not when it was due

    assert result.outcome is FollowUpOutcome.CUSTOMER_IN_TOUCH
    assert "customer in touch (ivr-calls-in)" in result.path
    status = await ih.status(call, lambda s: bool(s.stopped_follow_ups))
    assert status.stopped_follow_ups == [result.follow_up_id]
    assert ih.office.sms_to(customer.phone) == []
    # Another customer's follow-up keeps waiting.
    assert (await theirs.query(FollowUpWorkflow.status)).state.value == "waiting"
