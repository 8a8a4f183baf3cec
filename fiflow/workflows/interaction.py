"""InteractionWorkflow: one per live interaction — take its events in order, fire triggers."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from fiflow.activities.backoffice import AddCrmNote, CrmActivities, GetCustomer
    from fiflow.activities.interactions import (
        ContactWindowActivities,
        CreateTicket,
        CustomerInTouchNow,
        FollowUpRegistry,
        FraudAlertFromInteraction,
        InHours,
        InteractionActivities,
        PrepareFraudAlert,
        PriorQuery,
        RecordInteraction,
        TicketActivities,
    )
    from fiflow.activities.metrics import MetricsActivities
    from fiflow.activities.rules import LoadTriggerRules, RuleActivities
    from fiflow.domain.alert_start import alert_search_attributes, alert_summary
    from fiflow.domain.credit_prefill import CreditPrefillInput
    from fiflow.domain.customers import Customer
    from fiflow.domain.follow_ups import FollowUpInput
    from fiflow.domain.interactions import (
        MAX_EVENTS,
        EventType,
        FiredTrigger,
        InteractionEvent,
        InteractionInput,
        InteractionState,
        InteractionStatus,
        NextBestAction,
        PriorInteraction,
        takes_event,
    )
    from fiflow.domain.keys import (
        alert_workflow_id,
        follow_up_workflow_id,
        idempotency_key,
        interaction_workflow_id,
        prefill_workflow_id,
    )
    from fiflow.domain.metrics import RecordMetricEvents, interaction_events
    from fiflow.domain.text import REASON_MAX, clean_text
    from fiflow.domain.triggers import (
        ActionType,
        NotFollowedBy,
        Trigger,
        TriggerAction,
        TriggerRuleSet,
        Verdict,
        current_reason,
        evaluate,
        latest_reason,
    )
    from fiflow.workflows.credit_prefill import CreditPrefillWorkflow
    from fiflow.workflows.failures import cause_of
    from fiflow.workflows.follow_up import FollowUpWorkflow
    from fiflow.workflows.fraud_alert import FraudAlertWorkflow
    from fiflow.workflows.options import BACKOFFICE, CRITICAL_WRITE, METRICS, QUICK

# An interaction nobody ends (a dropped chat, a lost hang-up event) closes after this long
# without events, as "abandoned".
IDLE_CLOSE = timedelta(hours=2)
# Bounds the history of a runaway sender; later events are still stored by the API.


@workflow.defn
class InteractionWorkflow:
    """Applies the trigger rules to an interaction's events while the customer is still there."""

    @workflow.init
    def __init__(self, inp: InteractionInput) -> None:
        self._inp = inp
        self._id = interaction_workflow_id(inp.interaction_id)
        self._status = InteractionStatus(
            interaction_id=inp.interaction_id, customer_id=inp.customer_id, channel=inp.channel
        )
        self._pending: list[InteractionEvent] = []
        self._seen: set[str] = set()
        self._fired: set[str] = set()
        self._rules: TriggerRuleSet | None = None
        self._prior: list[PriorInteraction] = []
        self._customer: Customer | None = None
        self._last_event_at: datetime | None = None
        self._recorded_reason: str | None = None  # the reason the context store has

    @workflow.signal(name="event")
    def event(self, ev: InteractionEvent) -> None:
        """An accepted event; duplicates (the same event_id) are dropped."""
        if ev.event_id in self._seen:
            return
        # Past the cap only the end of the call still counts (the API says `rejected` to the
        # rest); histories from before the patch kept dropping it too.
        past_cap = len(self._seen) >= MAX_EVENTS
        if past_cap and not (
            workflow.patched("end-taken-past-cap") and takes_event(len(self._seen), ev.type)
        ):
            return
        self._seen.add(ev.event_id)
        self._pending.append(ev.model_copy(update={"accepted_at": workflow.now()}))

    @workflow.query(name="status")
    def status(self) -> InteractionStatus:
        """Events, fired triggers and pending next-best actions."""
        return self._status

    @workflow.run
    async def run(self, inp: InteractionInput) -> InteractionStatus:
        """Take events until the interaction ends (plus a grace period), then close it."""
        s = self._status
        s.started_at = workflow.now()
        self._last_event_at = workflow.now()
        rules = await workflow.execute_local_activity_method(
            RuleActivities.load_trigger_rules, LoadTriggerRules(), **QUICK
        )
        self._rules = rules
        s.rule_set_version = rules.version
        if inp.customer_id is not None:
            await self._load_customer(inp.customer_id, rules)
        await self._record("open")
        if inp.customer_id is not None:
            await self._stop_follow_ups(inp.customer_id)

        close_at: datetime | None = None
        while True:
            while self._pending:
                ev = self._pending.pop(0)
                self._take(ev)
                await self._record_reason_when_known()
                if ev.type is EventType.INTERACTION_ENDED and close_at is None:
                    s.state = InteractionState.ENDED
                    s.ended_at = workflow.now()
                    close_at = workflow.now() + rules.grace_period
                await self._check_triggers(final=False)
            now = workflow.now()
            if close_at is not None and now >= close_at:
                break
            idle_until = (self._last_event_at or now) + IDLE_CLOSE
            if close_at is None and now >= idle_until:
                s.outcome = "abandoned"
                break
            wake = [t for t in (close_at, idle_until, self._next_recheck(now)) if t is not None]
            timeout = min(wake) - now
            try:
                await workflow.wait_condition(lambda: bool(self._pending), timeout=timeout)
            except TimeoutError:
                await self._check_triggers(final=False)

        # Events that came in while the last timer fired still count.
        while self._pending:
            self._take(self._pending.pop(0))
            await self._check_triggers(final=False)
        # The customer is gone: a "not followed by" still waiting can no longer be followed.
        await self._check_triggers(final=True)
        s.state = InteractionState.CLOSED
        s.ended_at = s.ended_at or workflow.now()
        s.outcome = s.outcome or self._outcome()
        await self._record("closed")
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._record_metrics()
        # Accepted while the record was written: kept, though they fire nothing any more.
        while self._pending:
            self._take(self._pending.pop(0))
        return s

    async def _record_metrics(self) -> None:
        """Record the interaction's business facts once (one local activity, one marker).

        Histories written before recorded none (docs/architecture.md, section 7).
        """
        if not workflow.patched("metrics-interaction"):
            return
        events = interaction_events(workflow.info().workflow_id, self._status)
        try:
            await workflow.execute_local_activity_method(
                MetricsActivities.record_metric_events,
                RecordMetricEvents(events=events),
                **METRICS,
            )
        except FailureError as err:
            # The interaction's record stands without its figures.
            workflow.logger.warning("metrics not recorded (%s)", cause_of(err))

    # --- events and triggers --------------------------------------------------------------

    def _take(self, ev: InteractionEvent) -> None:
        s = self._status
        if s.events and ev.occurred_at < max(e.occurred_at for e in s.events):
            ev = ev.model_copy(update={"out_of_order": True})
        s.events.append(ev)
        reason = current_reason(s.events)
        # By when the events occurred, not when they arrived (a late straggler's topic must
        # not replace a newer one). Asked only where the two differ; histories written before
        # kept the arrival order (docs/architecture.md, section 7).
        latest = latest_reason(s.events)
        if latest != reason and workflow.patched("reason-from-latest-occurrence"):
            reason = latest
        s.reason = reason or s.reason
        self._last_event_at = workflow.now()
        workflow.set_current_details(
            f"**{s.state.value}** · {len(s.events)} events · reason {s.reason or '-'} · "
            f"fired: {', '.join(f.trigger_id for f in s.fired) or '-'}"
        )

    def _next_recheck(self, now: datetime) -> datetime | None:
        """When a waiting "not followed by" trigger must be looked at again."""
        assert self._rules is not None
        times = []
        for trigger in self._rules.triggers:
            if trigger.id in self._fired or not isinstance(trigger.when, NotFollowedBy):
                continue
            verdict = self._verdict(trigger, now)
            if verdict.recheck_at is not None:
                times.append(verdict.recheck_at)
        return min(times) if times else None

    def _verdict(self, trigger: Trigger, now: datetime) -> Verdict:
        return evaluate(trigger, self._status.events, self._prior, now)

    async def _in_hours(self, trigger: Trigger) -> bool:
        """Local-time hours go through an activity: a tzdata update must not change a replay."""
        if trigger.only_during is None:
            return True
        return await workflow.execute_local_activity_method(
            ContactWindowActivities.in_hours,
            InHours(
                hours=trigger.only_during,
                customer_zone=self._customer.timezone if self._customer else None,
                at=workflow.now(),
            ),
            **QUICK,
        )

    async def _check_triggers(self, *, final: bool) -> None:
        assert self._rules is not None
        for trigger in self._rules.triggers:
            if trigger.id in self._fired:
                continue
            now = workflow.now()
            verdict = self._verdict(trigger, now)
            if not verdict.fires and final and verdict.recheck_at is not None:
                verdict = self._verdict(trigger, verdict.recheck_at)
            if verdict.fires and await self._in_hours(trigger):
                self._fired.add(trigger.id)
                await self._fire(trigger, verdict)

    async def _fire(self, trigger: Trigger, verdict: Verdict) -> None:
        s = self._status
        on_event = s.events[-1].event_id if s.events else None
        fired = FiredTrigger(trigger_id=trigger.id, at=workflow.now(), on_event=on_event)
        s.fired.append(fired)
        if trigger.repeat_caller is not None:
            s.repeat_of = sorted({*s.repeat_of, *(p.interaction_id for p in self._prior)})
        for action in trigger.actions:
            result = await self._act(trigger, action)
            fired.actions.append({"type": action.type.value, **result})
        workflow.set_current_details(
            f"**{s.state.value}** · trigger {trigger.id} fired ({verdict.detail})"
        )

    async def _act(self, trigger: Trigger, action: TriggerAction) -> dict[str, str]:
        s = self._status
        if action.type is ActionType.NEXT_BEST_ACTION:
            assert action.action is not None
            s.next_actions.append(
                NextBestAction(
                    action=action.action,
                    detail=action.detail,
                    trigger_id=trigger.id,
                    at=workflow.now(),
                )
            )
            return {"outcome": "published", "action": action.action}
        customer_id = self._inp.customer_id
        if customer_id is None:
            return {"outcome": "skipped", "detail": "caller not identified"}
        try:
            if action.type is ActionType.CRM_NOTE:
                await workflow.execute_activity_method(
                    CrmActivities.add_note,
                    AddCrmNote(
                        customer_id=customer_id,
                        category="interaction",
                        text=f"{action.note} (interaction {s.interaction_id})",
                        idempotency_key=self._key(f"{trigger.id}:note"),
                    ),
                    **BACKOFFICE,
                )
                return {"outcome": "done"}
            if action.type is ActionType.START_FOLLOW_UP:
                return await self._start_follow_up(trigger, action, customer_id)
            if action.type is ActionType.START_CREDIT_PREFILL:
                return await self._start_credit_prefill(trigger, action, customer_id)
            return await self._start_fraud_alert(trigger, action, customer_id)
        except ActivityError as exc:
            return {"outcome": "failed", "detail": cause_of(exc)}

    async def _start_follow_up(
        self, trigger: Trigger, action: TriggerAction, customer_id: str
    ) -> dict[str, str]:
        s = self._status
        assert action.after is not None and action.subject is not None
        # The reason is the caller's own topic text; it reaches CRM and the follow-up's texts.
        reason = clean_text(s.reason or "", REASON_MAX) or "general"
        ticket = await workflow.execute_activity_method(
            TicketActivities.create_ticket,
            CreateTicket(
                customer_id=customer_id,
                subject=action.subject,
                category=reason,
                description=f"Opened by trigger {trigger.id} during interaction "
                f"{s.interaction_id}.",
                idempotency_key=self._key(f"{trigger.id}:ticket"),
            ),
            **BACKOFFICE,
        )
        follow_up_id = f"{s.interaction_id}-{trigger.id}"
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                FollowUpWorkflow.run,
                FollowUpInput(
                    follow_up_id=follow_up_id,
                    customer_id=customer_id,
                    ticket_id=ticket.ticket_id,
                    reason=reason,
                    subject=action.subject,
                    follow_up_at=workflow.now() + action.after,
                    created_at=workflow.now(),
                    origin=s.interaction_id,
                ),
                id=follow_up_workflow_id(follow_up_id),
                # The follow-up outlives the call that asked for it.
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"Follow-up {follow_up_id} on ticket {ticket.ticket_id}",
            )
        return {"outcome": "started", "follow_up_id": follow_up_id, "ticket_id": ticket.ticket_id}

    async def _start_credit_prefill(
        self, trigger: Trigger, action: TriggerAction, customer_id: str
    ) -> dict[str, str]:
        assert action.product is not None
        prefill_id = f"{self._status.interaction_id}-{trigger.id}"
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                CreditPrefillWorkflow.run,
                CreditPrefillInput(
                    prefill_id=prefill_id,
                    customer_id=customer_id,
                    product=action.product,
                    interaction_id=self._status.interaction_id,
                    requested_at=workflow.now(),
                ),
                id=prefill_workflow_id(prefill_id),
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"Credit pre-fill {prefill_id} ({action.product.value})",
            )
        return {"outcome": "started", "prefill_id": prefill_id}

    async def _start_fraud_alert(
        self, trigger: Trigger, action: TriggerAction, customer_id: str
    ) -> dict[str, str]:
        s = self._status
        assert action.alert_type is not None
        card = next(
            (
                e.attributes.get("card_last4")
                for e in reversed(s.events)
                if e.attributes.get("card_last4")
            ),
            None,
        )
        alert = await workflow.execute_activity_method(
            FraudAlertFromInteraction.prepare,
            PrepareFraudAlert(
                source_event_id=f"{s.interaction_id}:{trigger.id}",
                customer_id=customer_id,
                alert_type=action.alert_type,
                card_last4=str(card) if card else None,
            ),
            **BACKOFFICE,
        )
        if alert is None:
            return {"outcome": "skipped", "detail": "no recent card transaction"}
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                FraudAlertWorkflow.run,
                alert,
                id=alert_workflow_id(alert.alert_id),
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=alert_search_attributes(alert),
                static_summary=alert_summary(alert),
            )
        return {"outcome": "started", "alert_id": alert.alert_id}

    # --- context store --------------------------------------------------------------------

    async def _load_customer(self, customer_id: str, rules: TriggerRuleSet) -> None:
        try:
            self._customer = await workflow.execute_local_activity_method(
                CrmActivities.get_customer, GetCustomer(customer_id=customer_id), **QUICK
            )
        except ActivityError as exc:
            # Triggers still run (in UTC); actions that need the customer say so.
            workflow.logger.warning("customer profile unavailable: %s", cause_of(exc))
        window = rules.longest_repeat_window()
        if window is not None:
            try:
                self._prior = await workflow.execute_activity_method(
                    InteractionActivities.prior_interactions,
                    PriorQuery(
                        customer_id=customer_id,
                        since=workflow.now() - window,
                        exclude=self._inp.interaction_id,
                    ),
                    **QUICK,
                )
            except ActivityError as exc:
                # Without the history no one counts as a repeat caller; the rest still runs.
                workflow.logger.warning("earlier interactions unavailable: %s", cause_of(exc))

    async def _stop_follow_ups(self, customer_id: str) -> None:
        """The customer is in touch: follow-ups waiting to chase them have their answer."""
        try:
            self._status.stopped_follow_ups = await workflow.execute_activity_method(
                FollowUpRegistry.stop_waiting_follow_ups,
                CustomerInTouchNow(
                    customer_id=customer_id, interaction_id=self._inp.interaction_id
                ),
                **QUICK,
            )
        except ActivityError as exc:
            # They still stop when they wake: each checks the context store before calling.
            workflow.logger.warning("could not stop waiting follow-ups: %s", cause_of(exc))

    async def _record_reason_when_known(self) -> None:
        """Store the reason as soon as an event names it, not only when the call closes.

        A caller whose call dropped and who calls straight back must already count as a
        repeat caller: the second call reads the first one's reason from the context store.
        """
        reason = self._status.reason
        if reason is None or reason == self._recorded_reason:
            return
        if workflow.patched("record-reason-when-known"):
            self._recorded_reason = reason
            await self._record("open")

    async def _record(self, status: str) -> None:
        try:
            await self._write_record(status)
        except ActivityError as exc:
            # The events are stored by the API already; only this summary row is missing.
            workflow.logger.warning("interaction record not written: %s", cause_of(exc))

    async def _write_record(self, status: str) -> None:
        s = self._status
        # Retried until the context store takes it (a database outage delays the record, it
        # does not lose it); events keep being accepted meanwhile and are taken afterwards.
        workflow.set_current_details(
            f"**{s.state.value}** · {len(s.events)} events · interaction record ({status}) "
            "not yet stored: waiting for the context store, retrying"
        )
        await workflow.execute_activity_method(
            InteractionActivities.record_interaction,
            RecordInteraction(
                interaction_id=s.interaction_id,
                customer_id=s.customer_id,
                channel=s.channel,
                status=status,
                reason=s.reason,
                outcome=s.outcome,
                started_at=s.started_at or workflow.now(),
                ended_at=s.ended_at if status == "closed" else None,
                summary={
                    "fired": [f.trigger_id for f in s.fired],
                    "next_actions": [a.action for a in s.next_actions],
                    "events": len(s.events),
                }
                if status == "closed"
                else None,
            ),
            **CRITICAL_WRITE,
        )
        workflow.set_current_details(
            f"**{s.state.value}** · {len(s.events)} events · interaction record ({status}) stored"
        )

    def _outcome(self) -> str:
        types = {e.type for e in self._status.events}
        if EventType.SELF_SERVICE_SUCCEEDED in types:
            return "resolved"
        ended = next(
            (e for e in reversed(self._status.events) if e.type is EventType.INTERACTION_ENDED),
            None,
        )
        stated = ended.attributes.get("outcome") if ended else None
        return str(stated)[:64] if stated else "unresolved"

    def _key(self, step: str) -> str:
        return idempotency_key(self._id, step)
