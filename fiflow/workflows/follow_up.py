"""FollowUpWorkflow: come back to an unresolved request, inside the allowed contact windows."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from fiflow.activities.backoffice import AddCrmNote, CrmActivities, GetCustomer
    from fiflow.activities.interactions import (
        ContactWindowActivities,
        FollowUpRegistry,
        GetTicket,
        InteractionActivities,
        NextContact,
        PriorQuery,
        RecordFollowUp,
        TicketActivities,
    )
    from fiflow.activities.metrics import MetricsActivities
    from fiflow.activities.rules import LoadTriggerRules, RuleActivities
    from fiflow.domain.customers import Customer, channel_order
    from fiflow.domain.follow_ups import (
        ContactAttempt,
        CustomerInTouch,
        FollowUpInput,
        FollowUpOutcome,
        FollowUpState,
        FollowUpStatus,
        Reschedule,
        Resolved,
    )
    from fiflow.domain.keys import follow_up_workflow_id, idempotency_key
    from fiflow.domain.metrics import RecordMetricEvents, follow_up_events
    from fiflow.domain.rules import render, render_sms
    from fiflow.domain.text import REASON_MAX, SUBJECT_MAX, clean_text
    from fiflow.domain.triggers import FollowUpRules
    from fiflow.workflows.failures import cause_of
    from fiflow.workflows.options import BACKOFFICE, CRITICAL_WRITE, METRICS, QUICK
    from fiflow.workflows.reach import Message, reach

# Template values that come from outside (a CRM ticket's subject, an interaction's topic).
OUTSIDE_FIELDS = frozenset({"subject", "reason"})


@workflow.defn
class FollowUpWorkflow:
    """Waits, checks whether the request is still open, and reaches out within the rules."""

    @workflow.init
    def __init__(self, inp: FollowUpInput) -> None:
        self._inp = inp
        self._id = follow_up_workflow_id(inp.follow_up_id)
        self._status = FollowUpStatus(
            follow_up_id=inp.follow_up_id,
            customer_id=inp.customer_id,
            ticket_id=inp.ticket_id,
            reason=inp.reason,
            follow_up_at=inp.follow_up_at,
        )
        self._stop: FollowUpOutcome | None = None
        self._moved = False
        self._give_up_at: datetime | None = None
        self._give_up_after: timedelta | None = None

    # --- handlers -------------------------------------------------------------------------

    @workflow.signal(name="resolved")
    def resolved(self, req: Resolved) -> None:
        """The request was resolved elsewhere."""
        if self._stop is None:
            self._stop = FollowUpOutcome.RESOLVED
            self._status.path.append(f"resolved by {req.resolved_by}")

    @workflow.signal(name="customer_in_touch")
    def customer_in_touch(self, req: CustomerInTouch) -> None:
        """The customer contacted the bank (a new interaction)."""
        if self._stop is None:
            self._stop = FollowUpOutcome.CUSTOMER_IN_TOUCH
            self._status.path.append(f"customer in touch ({req.interaction_id})")

    @workflow.signal(name="reschedule")
    def reschedule(self, req: Reschedule) -> None:
        """Move the follow-up time ("call me tomorrow at 10")."""
        s = self._status
        s.reschedules.append(req)
        s.follow_up_at = req.follow_up_at
        s.path.append(f"moved to {req.follow_up_at.isoformat()} by {req.requested_by}")
        self._moved = True
        # The customer's new time moves the final deadline with it.
        if self._give_up_at is not None and self._give_up_after is not None:
            self._give_up_at = max(self._give_up_at, req.follow_up_at + self._give_up_after)

    @workflow.query(name="status")
    def status(self) -> FollowUpStatus:
        """Where the follow-up is."""
        return self._status

    # --- main flow ------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: FollowUpInput) -> FollowUpStatus:
        """Wait, check, reach out, retry; stop when resolved, in touch, or out of attempts."""
        s = self._status
        rule_set = await workflow.execute_local_activity_method(
            RuleActivities.load_trigger_rules, LoadTriggerRules(), **QUICK
        )
        rules = rule_set.follow_up
        s.rule_set_version = rule_set.version
        self._give_up_after = rules.give_up_after
        self._give_up_at = max(inp.follow_up_at, s.follow_up_at) + rules.give_up_after
        await self._register("waiting")
        outcome: FollowUpOutcome | None = None
        while outcome is None:
            self._moved = False
            s.next_check_at = s.follow_up_at
            self._details()
            await self._sleep_until(s.follow_up_at, lambda: self._stop is not None or self._moved)
            if self._stop is not None:
                outcome = self._stop
            elif not self._moved:
                outcome = await self._due(rules, rule_set.fi_name)
        s.outcome = outcome
        s.state = FollowUpState.DONE
        s.ended_at = workflow.now()
        s.next_check_at = None
        await self._register("done")
        self._details()
        await self._record_metrics()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return s

    async def _due(self, rules: FollowUpRules, fi_name: str) -> FollowUpOutcome | None:
        """The follow-up time came: stop, contact, or wait (None: go round again).

        A signal that arrives while this runs wins: `resolved` ends it, a new time replaces
        whatever this would have scheduled.
        """
        s, inp = self._status, self._inp
        assert self._give_up_at is not None
        try:
            ticket = await workflow.execute_activity_method(
                TicketActivities.get_ticket, GetTicket(ticket_id=inp.ticket_id), **BACKOFFICE
            )
            since_contact = await workflow.execute_activity_method(
                InteractionActivities.prior_interactions,
                PriorQuery(customer_id=inp.customer_id, since=inp.created_at, exclude=inp.origin),
                **QUICK,
            )
            # Read afresh each time: the number, the device or the time zone may have changed.
            customer = await workflow.execute_local_activity_method(
                CrmActivities.get_customer, GetCustomer(customer_id=inp.customer_id), **QUICK
            )
        except ActivityError as exc:
            s.path.append(f"could not check ({cause_of(exc)}); trying again later")
            if workflow.now() >= self._give_up_at:
                return await self._give_up(rules, fi_name, "deadline")
            self._later(workflow.now() + rules.retry_after)
            return None
        if self._stop is not None or self._moved:
            return self._stop
        if ticket.is_resolved():
            s.path.append(f"ticket {ticket.status} in CRM")
            return FollowUpOutcome.RESOLVED
        if since_contact:
            s.path.append(f"customer in touch since ({since_contact[0].interaction_id})")
            return FollowUpOutcome.CUSTOMER_IN_TOUCH
        now = workflow.now()
        counted = [a.at for a in s.attempts if a.outcome != "suppressed"]
        when = await workflow.execute_local_activity_method(
            ContactWindowActivities.next_contact_time,
            NextContact(now=now, customer_zone=customer.timezone, rules=rules, attempts=counted),
            **QUICK,
        )
        if self._stop is not None or self._moved:
            return self._stop
        if when is None or when > self._give_up_at:
            why = "attempts used up" if len(counted) >= rules.max_attempts else "deadline"
            return await self._give_up(rules, fi_name, why)
        if when > now:
            s.path.append(f"outside the contact window; next at {when.isoformat()}")
            self._later(when)
            return None
        await self._contact(rules, customer, fi_name)
        self._later(workflow.now() + rules.retry_after)
        return None

    async def _record_metrics(self) -> None:
        """Record the follow-up's business facts once (one local activity, one marker event).

        Histories written before recorded none (docs/architecture.md, section 7).
        """
        if not workflow.patched("metrics-follow-up"):
            return
        events = follow_up_events(workflow.info().workflow_id, self._status)
        try:
            await workflow.execute_local_activity_method(
                MetricsActivities.record_metric_events,
                RecordMetricEvents(events=events),
                **METRICS,
            )
        except FailureError as err:
            self._status.path.append(f"metrics not recorded ({cause_of(err)})")

    def _later(self, at: datetime) -> None:
        """Check again at `at`, unless the customer set a time meanwhile."""
        if not self._moved:
            self._status.follow_up_at = at

    async def _contact(self, rules: FollowUpRules, customer: Customer, fi_name: str) -> None:
        s, inp = self._status, self._inp
        values = self._template_values(fi_name)
        number = len(s.attempts) + 1
        message = Message(
            purpose="follow_up",
            sms=render_sms(
                rules.templates["follow_up_sms"],
                values,
                outside=OUTSIDE_FIELDS,
                max_segments=rules.sms_max_segments,
            ),
            push_title="Following up",
            push_body=render(rules.templates["follow_up_push"], values),
            push_data={"ticket_id": inp.ticket_id},
        )
        channel, attempts = await reach(
            customer,
            channel_order(customer),
            message,
            lambda c: idempotency_key(self._id, f"contact{number}:{c.value}"),
        )
        for attempt in attempts:
            if attempt.outcome == "failed":
                s.path.append(
                    f"contact {number} by {attempt.channel.value} failed: {attempt.detail}"
                )
            elif attempt.outcome == "skipped":
                s.attempts.append(
                    ContactAttempt(
                        at=workflow.now(),
                        step=attempt.channel.value,
                        outcome="suppressed",
                        system=attempt.channel.value,
                        idempotency_key=attempt.idempotency_key,
                    )
                )
        if channel is not None:
            key = next((a.idempotency_key for a in attempts if a.channel is channel), None)
            s.attempts.append(
                ContactAttempt(
                    at=workflow.now(),
                    step=channel.value,
                    outcome="sent",
                    system=channel.value,
                    idempotency_key=key,
                )
            )
            await self._note(
                f"contact{number}",
                f"Follow-up contact {number} by {channel.value} about ticket {inp.ticket_id}.",
            )
            return
        # Nobody reached on any channel: counted, so the attempts cap still ends this.
        s.attempts.append(ContactAttempt(at=workflow.now(), step="none", outcome="failed"))

    async def _give_up(self, rules: FollowUpRules, fi_name: str, why: str) -> FollowUpOutcome:
        values = self._template_values(fi_name)
        await self._note("gave_up", f"{render(rules.templates['gave_up_note'], values)} ({why})")
        self._status.path.append(f"gave up: {why}")
        return FollowUpOutcome.GAVE_UP

    async def _register(self, status: Literal["waiting", "done"]) -> None:
        """Keep the context store's list of waiting follow-ups right."""
        inp, s = self._inp, self._status
        # Retried until the context store takes it: an interaction that finds no waiting
        # follow-up there cannot stop it. The follow-up's own signals are still taken.
        workflow.set_current_details(
            f"**{s.state.value}** · ticket {s.ticket_id} · follow-up registration ({status}) "
            "not yet stored: waiting for the context store, retrying"
        )
        await workflow.execute_activity_method(
            FollowUpRegistry.record_follow_up,
            RecordFollowUp(
                follow_up_id=inp.follow_up_id,
                customer_id=inp.customer_id,
                ticket_id=inp.ticket_id,
                status=status,
                outcome=s.outcome.value if s.outcome else None,
            ),
            **CRITICAL_WRITE,
        )
        self._details()

    def _template_values(self, fi_name: str) -> dict[str, str]:
        inp = self._inp
        reason = clean_text(inp.reason, REASON_MAX)
        subject = clean_text(inp.subject, SUBJECT_MAX) or reason
        return {"fi_name": fi_name, "subject": subject, "reason": reason}

    async def _note(self, step: str, text: str) -> None:
        try:
            await workflow.execute_activity_method(
                CrmActivities.add_note,
                AddCrmNote(
                    customer_id=self._inp.customer_id,
                    category="follow_up",
                    text=text,
                    idempotency_key=idempotency_key(self._id, step),
                ),
                **BACKOFFICE,
            )
        except ActivityError as exc:
            self._status.path.append(f"CRM note {step} failed: {cause_of(exc)}")

    async def _sleep_until(self, at: datetime, interrupt: Callable[[], bool]) -> None:
        remaining = at - workflow.now()
        if remaining <= timedelta(0):
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(interrupt, timeout=remaining)

    def _details(self) -> None:
        s = self._status
        when = s.next_check_at.isoformat() if s.next_check_at else "-"
        workflow.set_current_details(
            f"**{s.state.value}** · ticket {s.ticket_id} · attempts {len(s.attempts)} · "
            f"next check {when}" + (f" · outcome {s.outcome.value}" if s.outcome else "")
        )
