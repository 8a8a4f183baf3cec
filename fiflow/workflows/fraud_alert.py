"""FraudAlertWorkflow: one per alert — ask the customer, wait, apply the FI's rules."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from fiflow.activities.alert_preparation import AlertPreparation, PrepareAlert
    from fiflow.activities.backoffice import (
        AddCrmNote,
        CardActivities,
        ContactCenterActivities,
        CrmActivities,
        FraudActivities,
        GetCustomer,
        RecordFraudOutcome,
        ScheduleCallback,
        SetCardBlocked,
    )
    from fiflow.activities.conversations import (
        ConversationActivities,
        RegisterAlertWithConversation,
        Registration,
    )
    from fiflow.activities.messaging import (
        Delivery,
        MessagingActivities,
        SendPush,
        SendSms,
    )
    from fiflow.activities.metrics import MetricsActivities
    from fiflow.activities.rules import LoadAlertRules, RuleActivities
    from fiflow.domain import messages
    from fiflow.domain import search_attributes as sa
    from fiflow.domain.alerts import (
        FINAL_STATE,
        ActionRecord,
        AlertInput,
        AlertOutcome,
        AlertState,
        AlertStatus,
        CustomerReply,
        ReplyOutcome,
    )
    from fiflow.domain.conversations import AlertClosed, SmsOptedIn, SmsOptedOut
    from fiflow.domain.customers import Channel, Customer, channel_order, other_channel
    from fiflow.domain.keys import idempotency_key, reply_code_candidates
    from fiflow.domain.metrics import RecordMetricEvents, alert_events
    from fiflow.domain.push_binding import push_reply_token
    from fiflow.domain.rules import ActionType, AlertRules, RuleAction, render, render_sms
    from fiflow.domain.text import SUMMARY_MAX, clean_text
    from fiflow.workflows.failures import cause_of
    from fiflow.workflows.local_first import local_first
    from fiflow.workflows.options import BACKOFFICE, LOCAL_CALL, METRICS, PREPARE_ALERT, QUICK
    from fiflow.workflows.reach import Attempt, Message, reach

A = TypeVar("A")
R = TypeVar("R")

PUSH_ACTIONS = ["confirm", "contest"]
# Runs that took this patch run `_run_hot_path`; histories written before replay `run`'s
# original path (docs/architecture.md, section 7).
HOT_PATH = "alert-hot-path"
# Template values that come from outside fiflow: shortened first when an SMS is too long.
OUTSIDE_FIELDS = frozenset({"merchant"})


@workflow.defn
class FraudAlertWorkflow:
    """Sends the alert, routes the customer's answer through the rules, reports what it did."""

    @workflow.init
    def __init__(self, inp: AlertInput) -> None:
        self._inp = inp
        self._status = AlertStatus(
            alert_id=inp.alert_id,
            alert_type=inp.request.alert_type,
            customer_id=inp.request.customer_id,
            timings={"received": inp.received_at},
        )
        self._accepting = True  # replies count until the alert decides
        self._seen: set[str] = set()
        self._rules: AlertRules | None = None
        self._customer: Customer | None = None
        self._conversation_id: str | None = None
        self._late_answered: set[str] = set()  # late SMS replies told "not applied"
        self._merged = False  # over the number's alert cap: the conversation's digest texts it
        # The address sent STOP (the conversation says so before the database may know):
        # this alert sends it no SMS from then on.
        self._sms_opted_out = False
        self._sms_opted_out_at: datetime | None = None  # when the conversation routed it
        self._search_updates: list[SearchAttributeUpdate] = []
        self._hot = False  # the hot path: back-office calls run as local activities first
        # AlertState already reads "awaiting_reply" from the start (set by the starter, free):
        # the hot path then skips that upsert. Read from the start event, so a history whose
        # start said "starting" (an older starter) replays with its upsert: no patch needed.
        self._awaiting_from_start = False

    # --- handlers -------------------------------------------------------------------------

    @workflow.signal(name="customer_reply")
    def customer_reply(self, reply: CustomerReply) -> None:
        """A reply routed to this alert (by the conversation, or straight from push)."""
        if reply.message_id in self._seen:
            return
        self._seen.add(reply.message_id)
        if self._accepting and self._status.reply is None:
            self._status.reply = reply
            self._status.timings["replied"] = workflow.now()
            self._status.path.append(f"reply:{reply.outcome.value} via {reply.routed_by}")
        else:
            self._status.ignored_replies.append(reply)

    @workflow.signal(name="sms_opted_out")
    def sms_opted_out(self, sig: SmsOptedOut) -> None:
        """The conversation routed a STOP from this alert's number: no more SMS to it."""
        if self._sms_opted_out_at is None or sig.at > self._sms_opted_out_at:
            self._sms_opted_out_at = sig.at
        if not self._sms_opted_out:
            self._sms_opted_out = True
            self._status.path.append("address opted out of SMS")

    @workflow.signal(name="sms_opted_in")
    def sms_opted_in(self, sig: SmsOptedIn) -> None:
        """The conversation routed a START after a STOP from this alert's number: SMS again."""
        if not self._sms_opted_out:
            return
        if self._sms_opted_out_at is not None and sig.at < self._sms_opted_out_at:
            return  # older than the opt-out it would undo
        # Asked only when it would change something (no marker otherwise). A worker without
        # this handler took the signal and changed nothing: its history then goes on
        # refusing SMS on replay (docs/architecture.md, section 7).
        if not workflow.patched("sms-opt-in"):
            return
        self._sms_opted_out = False
        self._status.path.append("address opted back in to SMS")

    @workflow.query(name="status")
    def status(self) -> AlertStatus:
        """The alert as it stands."""
        return self._status

    # --- main flow ------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: AlertInput) -> AlertStatus:
        """Run the alert to its outcome."""
        if workflow.patched(HOT_PATH):
            return await self._run_hot_path(inp)
        s = self._status
        req = inp.request
        rules = await workflow.execute_local_activity_method(
            RuleActivities.load_alert_rules, LoadAlertRules(alert_type=req.alert_type), **QUICK
        )
        self._rules = rules
        s.rule_set_version = rules.version
        self._search_updates.append(sa.RULE_SET_VERSION.value_set(rules.version))

        # Backoffs over a second wait on a workflow timer, not in the worker: a CRM outage
        # then shows in the history and the workflow task does not stay open for minutes.
        crm_read = (
            {**QUICK, "local_retry_threshold": timedelta(seconds=1)}
            if workflow.patched("crm-read-backs-off-on-timers")
            else QUICK
        )
        try:
            customer = await workflow.execute_local_activity_method(
                CrmActivities.get_customer, GetCustomer(customer_id=req.customer_id), **crm_read
            )
        except FailureError as err:
            # A local activity whose budget ran out raises its last failure unwrapped (an
            # ApplicationError), not always an ActivityError: both end the read.
            # Histories written before failed the alert here (docs/architecture.md, section 7).
            if not workflow.patched("crm-down-degrades"):
                raise
            customer = self._without_profile(err)
        self._customer = customer
        await self._register(customer)

        outcome = await self._decide()
        s.outcome = outcome
        s.timings["decided"] = workflow.now()
        self._set_state(FINAL_STATE[outcome])
        # Every rule action is done: one local activity carries all the alert's facts (one
        # marker event). Histories written before recorded none (architecture.md, section 7).
        if workflow.patched("metrics-alert"):
            await self._record_metrics()
        if workflow.patched("answer-late-replies"):
            await self._answer_late_replies()
        await self._close_in_conversation(outcome)
        await workflow.wait_condition(workflow.all_handlers_finished)
        # A forward the conversation began before it took the closing signal can land now:
        # answer it too (a reply arriving with the completion re-runs this task, so none slips).
        if workflow.patched("answer-late-replies-after-close"):
            await self._answer_late_replies()
            await workflow.wait_condition(workflow.all_handlers_finished)
        s.timings["completed"] = workflow.now()
        return s

    async def _run_hot_path(self, inp: AlertInput) -> AlertStatus:
        """The alert in as few workflow tasks and events as its guarantees allow.

        Same decisions as the original path; what changes is how they are recorded: the
        preparation and the first send run in the first workflow task, the rule actions and
        the metrics in the task that took the reply, each as a local activity (one marker per
        task is billed); the escalation timer is left to expire rather than cancelled; the
        search attributes change at the start, on escalation (a long-lived state) and at the
        end, not on the brief "applying" state.
        """
        self._hot = True
        s = self._status
        started_as = workflow.info().typed_search_attributes.get(sa.ALERT_STATE)
        self._awaiting_from_start = started_as == AlertState.AWAITING_REPLY.value
        await self._prepare()
        outcome = await self._decide()
        s.outcome = outcome
        s.timings["decided"] = workflow.now()
        self._set_state(FINAL_STATE[outcome])
        await self._record_metrics()
        await self._answer_late_replies()
        await self._close_in_conversation(outcome)
        await workflow.wait_condition(workflow.all_handlers_finished)
        # A forward the conversation began before it took the closing signal can land now:
        # answer it too (a reply arriving with the completion re-runs this task, so none slips).
        await self._answer_late_replies()
        await workflow.wait_condition(workflow.all_handlers_finished)
        s.timings["completed"] = workflow.now()
        return s

    async def _decide(self) -> AlertOutcome:
        """Pre-block, send, wait through the escalation ladder and apply the rules.

        Both paths decide alike; the hot path (`self._hot`) only waits and records differently:
        its escalation timer is left to expire, and the brief "applying" state is not upserted
        (applying takes one workflow task, and the final upsert follows in the same one).
        """
        s, rules, customer = self._status, self._rules, self._customer
        assert rules is not None and customer is not None
        req = self._inp.request
        reply_in_time = self._reply_before if self._hot else self._reply_within
        policy = rules.policy
        limit = policy.pre_block_min_amount
        if limit is not None and req.transaction.amount >= limit:
            s.card_pre_blocked = await self._card(True, "pre_block", "pre_block_high_amount")

        sent: Channel | None
        if self._merged and not self._sms_opted_out:
            sent = self._merged_into_digest()
        else:
            sent = await self._send_alert(channel_order(customer), "alert")
        if sent is None:
            self._accepting = False
            s.path.append("no reachable channel")
            await self._run_actions(policy.on_no_channel, "no_channel")
            return AlertOutcome.NO_CHANNEL
        self._set_state(AlertState.AWAITING_REPLY, upsert=not self._awaiting_from_start)
        for number, step in enumerate(policy.escalation, start=1):
            if await reply_in_time(step.wait):
                break
            final = number == len(policy.escalation)
            if final:
                self._accepting = False
            else:
                self._set_state(AlertState.ESCALATED)
            s.path.append(f"no reply after step {number}")
            await self._run_actions(step.actions, f"escalation{number}")
        reply = s.reply
        if reply is None:
            return AlertOutcome.NO_REPLY
        self._accepting = False
        self._set_state(AlertState.APPLYING, upsert=not self._hot)
        confirmed = reply.outcome is ReplyOutcome.CONFIRM
        outcome = AlertOutcome.CONFIRM if confirmed else AlertOutcome.CONTEST
        actions = policy.on_confirm if confirmed else policy.on_contest
        await self._run_actions(actions, outcome.value)
        return outcome

    async def _prepare(self) -> None:
        """Rules, customer and conversation in one local activity; step by step past its budget."""
        s, req = self._status, self._inp.request
        try:
            prepared = await workflow.execute_local_activity_method(
                AlertPreparation.prepare_alert,
                PrepareAlert(
                    alert_id=s.alert_id,
                    alert_type=req.alert_type,
                    customer_id=req.customer_id,
                    summary=self._summary(),
                    registered_at=workflow.now(),
                    customer=self._inp.customer,
                ),
                **PREPARE_ALERT,
            )
        except FailureError:
            # A part still failing (the CRM down, say): each step again on its own budget,
            # so a CRM outage degrades the alert as it always did. A refused alert type
            # fails the rules step again, and with it the alert, as before.
            if self._awaiting_from_start:
                # Not sent yet, and maybe not for a while: show it (once sent, the
                # "awaiting_reply" upsert follows as on the original path).
                self._awaiting_from_start = False
                self._set_state(AlertState.STARTING)
            await self._prepare_in_steps()
            return
        self._use_rules(prepared.rules)
        self._customer = prepared.customer
        if prepared.registration is None:
            s.reply_code = reply_code_candidates(s.alert_id)[0]
        else:
            self._registered(prepared.registration)

    async def _prepare_in_steps(self) -> None:
        req = self._inp.request
        rules = await workflow.execute_local_activity_method(
            RuleActivities.load_alert_rules, LoadAlertRules(alert_type=req.alert_type), **QUICK
        )
        self._use_rules(rules)
        try:
            customer = await workflow.execute_local_activity_method(
                CrmActivities.get_customer,
                GetCustomer(customer_id=req.customer_id),
                **QUICK,
                local_retry_threshold=timedelta(seconds=1),
            )
        except FailureError as err:
            customer = self._without_profile(err)
        self._customer = customer
        await self._register(customer)

    def _use_rules(self, rules: AlertRules) -> None:
        self._rules = rules
        self._status.rule_set_version = rules.version
        self._search_updates.append(sa.RULE_SET_VERSION.value_set(rules.version))

    def _registered(self, reg: Registration) -> None:
        s = self._status
        s.reply_code = reg.reply_code
        self._conversation_id = reg.conversation_id
        self._merged = reg.merged
        s.path.append("registered with SMS conversation")
        if reg.opted_out:
            self._sms_opted_out = True
            s.path.append("address opted out of SMS")

    async def _reply_before(self, wait: timedelta) -> bool:
        """Whether the reply came before the wait ended; the timer is never cancelled.

        `wait_condition(timeout=)` cancels its timer when the condition wins: two more events
        per answered alert. A timer still pending when the run completes costs nothing more.
        """
        if self._status.reply is not None:
            return True
        timer = asyncio.ensure_future(workflow.sleep(wait))
        await workflow.wait_condition(lambda: self._status.reply is not None or timer.done())
        return self._status.reply is not None

    # --- steps ----------------------------------------------------------------------------

    async def _register(self, customer: Customer) -> None:
        s = self._status
        if not customer.phone:
            s.reply_code = reply_code_candidates(s.alert_id)[0]
            return
        rules = self._rules
        assert rules is not None
        # The cap counts texts: only an alert that goes out by SMS first can be merged.
        by_sms = channel_order(customer)[:1] == [Channel.SMS]
        reg = await workflow.execute_local_activity_method(
            ConversationActivities.register_alert,
            RegisterAlertWithConversation(
                address=customer.phone,
                alert_id=s.alert_id,
                summary=self._summary(),
                registered_at=workflow.now(),
                cap=rules.sms_alert_cap if by_sms else None,
            ),
            **LOCAL_CALL,
        )
        self._registered(reg)

    def _without_profile(self, err: FailureError) -> Customer:
        """The CRM stayed down past the read's budget: carry on with no way to reach them.

        The rules then decide, as for any customer no channel reaches (`on_no_channel`: a
        callback through the contact center), rather than the alert failing in silence.
        """
        s = self._status
        s.path.append("customer profile unavailable (CRM down past its retry budget)")
        self._record("get_customer", "failed", cause_of(err))
        return Customer(customer_id=self._inp.request.customer_id)

    def _merged_into_digest(self) -> Channel:
        """Over the alert cap: no SMS of its own; the conversation's digest lists it."""
        s = self._status
        s.path.append("merged into the SMS digest (alert cap reached)")
        self._record("send_sms:alert", "merged", "listed in the conversation's next digest")
        s.channel = Channel.SMS
        s.channels_used.append(Channel.SMS)
        s.timings.setdefault("sent", workflow.now())
        self._search_updates.append(sa.CHANNEL.value_set(Channel.SMS.value))
        return Channel.SMS

    async def _reply_within(self, wait: timedelta) -> bool:
        try:
            await workflow.wait_condition(lambda: self._status.reply is not None, timeout=wait)
        except TimeoutError:
            return False
        return True

    async def _send_alert(self, channels: list[Channel], label: str) -> Channel | None:
        """Send the alert on the first channel that takes it; None when none did."""
        rules, customer, s = self._rules, self._customer, self._status
        assert rules is not None and customer is not None
        values = self._values()
        if self._sms_opted_out and Channel.SMS in channels:
            channels = [c for c in channels if c is not Channel.SMS]
            self._record(f"send_sms:{label}", "skipped", "address opted out")
        push_data = {"alert_id": s.alert_id, "reply_code": s.reply_code or ""}
        device = customer.push_device_id
        if self._inp.push_key and device:
            # The app sends this back with the reply: it proves the push reached this device.
            push_data["reply_token"] = push_reply_token(self._inp.push_key, device)
        message = Message(
            purpose=f"alert:{label}",
            sms=self._sms("alert_sms", values),
            push_title=render(rules.templates["alert_push_title"], values),
            push_body=render(rules.templates["alert_push_body"], values),
            push_actions=PUSH_ACTIONS,
            push_data=push_data,
        )
        channel, attempts = await reach(
            customer,
            channels,
            message,
            lambda c: self._key(f"send:{label}:{c.value}"),
            local=self._hot,
        )
        for attempt in attempts:
            self._record(
                f"send_{attempt.channel.value}:{label}", attempt.outcome, attempt.detail, attempt
            )
        if channel is None:
            return None
        s.channel = channel
        s.channels_used.append(channel)
        if channel is Channel.PUSH and device and device not in s.pushed_to:
            s.pushed_to.append(device)
        s.timings.setdefault("sent", workflow.now())
        self._search_updates.append(sa.CHANNEL.value_set(channel.value))
        return channel

    async def _run_actions(self, actions: list[RuleAction], label: str) -> None:
        for action in actions:
            await self._apply(action, label)

    async def _apply(self, action: RuleAction, label: str) -> None:
        s, customer = self._status, self._customer
        assert customer is not None
        name = f"{action.type.value}:{label}"
        key = self._key(name)
        req = self._inp.request
        try:
            match action.type:
                case ActionType.RECORD_FRAUD_OUTCOME:
                    assert action.outcome is not None
                    case_id = await self._write(
                        FraudActivities.record_outcome,
                        RecordFraudOutcome(
                            case_ref=s.alert_id,
                            customer_id=customer.customer_id,
                            outcome=action.outcome.value,
                            alert_type=req.alert_type,
                            idempotency_key=key,
                        ),
                    )
                    self._record(name, "done", f"{action.outcome.value} case {case_id}")
                case ActionType.BLOCK_CARD:
                    await self._card(True, label, action.reason or "fraud_alert")
                case ActionType.UNBLOCK_CARD:
                    if action.only_if_pre_blocked and not s.card_pre_blocked:
                        self._record(name, "skipped", "card was not pre-blocked")
                    else:
                        await self._card(False, label, action.reason or "customer_confirmed")
                case ActionType.SCHEDULE_CALLBACK:
                    assert action.reason is not None
                    callback_id = await self._write(
                        ContactCenterActivities.schedule_callback,
                        ScheduleCallback(
                            customer_id=customer.customer_id,
                            reason=action.reason,
                            priority=action.priority.value,
                            reference=s.alert_id,
                            idempotency_key=key,
                        ),
                    )
                    self._record(name, "done", f"{action.priority.value} callback {callback_id}")
                case ActionType.NOTIFY_CUSTOMER:
                    await self._notify(action, name, key)
                case ActionType.ADD_CRM_NOTE:
                    assert action.note is not None
                    await self._write(
                        CrmActivities.add_note,
                        AddCrmNote(
                            customer_id=customer.customer_id,
                            text=action.note,
                            category="fraud_alert",
                            idempotency_key=key,
                        ),
                    )
                    self._record(name, "done")
                case ActionType.RESEND:
                    last = s.channel or Channel.SMS
                    order = [other_channel(last), last] if action.channel == "other" else [last]
                    reachable = [c for c in order if customer.reachable_by(c)]
                    sent = await self._send_alert(reachable, label)
                    self._record(name, "done" if sent else "failed", sent.value if sent else "")
        except FailureError as err:
            # One refused action must not stop the others (a missing card, say): record it.
            # (A local activity's final failure can come unwrapped, not as an ActivityError.)
            self._record(name, "failed", cause_of(err))

    async def _card(self, blocked: bool, label: str, reason: str) -> bool:
        customer, req = self._customer, self._inp.request
        assert customer is not None
        name = f"{'block' if blocked else 'unblock'}_card:{label}"
        try:
            status = await self._write(
                CardActivities.set_blocked,
                SetCardBlocked(
                    customer_id=customer.customer_id,
                    card_last4=req.transaction.card_last4,
                    blocked=blocked,
                    reason=reason,
                    idempotency_key=self._key(name),
                ),
            )
        except FailureError as err:
            self._record(name, "failed", cause_of(err))
            return False
        self._record(name, "done", status)
        return True

    async def _notify(self, action: RuleAction, name: str, key: str) -> None:
        rules, customer, s = self._rules, self._customer, self._status
        assert rules is not None and customer is not None and action.template is not None
        values = self._values()
        text = render(rules.templates[action.template], values)
        channel = s.reply.channel if s.reply else (s.channel or Channel.SMS)
        if channel is Channel.PUSH and customer.push_device_id:
            await self._write(
                MessagingActivities.send_push,
                SendPush(
                    device_id=customer.push_device_id,
                    title=rules.fi_name,
                    body=text,
                    data={"alert_id": s.alert_id},
                    idempotency_key=key,
                ),
            )
            self._record(name, "done", "push")
        elif customer.phone and self._sms_opted_out:
            self._record(name, "skipped", "address opted out")
        elif customer.phone:
            result = await self._write(
                MessagingActivities.send_sms,
                SendSms(
                    to=customer.phone,
                    body=self._sms(action.template, values),
                    purpose=f"notify:{action.template}",
                    idempotency_key=key,
                ),
            )
            if result.delivery is Delivery.SENT:
                self._record(name, "done", "sms")
            else:
                self._record(name, "skipped", result.delivery.skip_reason())
        else:
            self._record(name, "skipped", "no channel")

    async def _answer_late_replies(self) -> None:
        """Tell the customer an SMS reply was not applied (it came while the alert closed).

        The conversation forwarded it believing the alert would act on it; without this the
        customer would hear nothing. Replies that come after the workflow ended are answered
        by the conversation itself, which finds the alert gone.
        """
        customer, rules = self._customer, self._rules
        if customer is None or not customer.phone or rules is None or self._sms_opted_out:
            return
        while late := [
            r
            for r in self._status.ignored_replies
            if r.channel is Channel.SMS and r.message_id not in self._late_answered
        ]:
            for reply in late:
                self._late_answered.add(reply.message_id)
                name = f"answer_late_reply:{reply.message_id}"
                try:
                    await self._write(
                        MessagingActivities.send_sms,
                        SendSms(
                            to=customer.phone,
                            body=messages.expired(rules.fi_name),
                            purpose="alert:late_reply",
                            idempotency_key=self._key(name),
                        ),
                    )
                    self._record(name, "done", "told the reply was not applied")
                except FailureError as err:
                    self._record(name, "failed", cause_of(err))

    async def _record_metrics(self) -> None:
        """Record the alert's business facts once (keyed by the workflow ID and fact)."""
        s = self._status
        events = alert_events(workflow.info().workflow_id, s, self._inp.source)
        try:
            await workflow.execute_local_activity_method(
                MetricsActivities.record_metric_events,
                RecordMetricEvents(events=events),
                **METRICS,
            )
        except FailureError as err:
            # The alert's outcome stands without its figures: say so rather than fail it.
            s.path.append(f"metrics not recorded ({cause_of(err)})")

    async def _close_in_conversation(self, outcome: AlertOutcome) -> None:
        reply = self._status.reply
        if self._conversation_id is None or (reply is not None and reply.channel is Channel.SMS):
            # An SMS reply came through the conversation, which closed the alert on its side.
            return
        handle = workflow.get_external_workflow_handle(self._conversation_id)
        try:
            await handle.signal(
                "alert_closed",
                AlertClosed(
                    alert_id=self._status.alert_id, outcome=outcome, closed_at=workflow.now()
                ),
            )
        except FailureError:
            # The conversation is gone (it only ends with no open alerts): nothing to tell.
            self._status.path.append("conversation already closed")

    # --- helpers --------------------------------------------------------------------------

    def _set_state(self, state: AlertState, *, upsert: bool = True) -> None:
        s = self._status
        s.state = state
        if upsert:
            # One upsert per state change, carrying whatever else changed since the last one.
            workflow.upsert_search_attributes(
                [*self._search_updates, sa.ALERT_STATE.value_set(state.value)]
            )
            self._search_updates = []
        channel = s.channel.value if s.channel else "none"
        workflow.set_current_details(
            f"**{state.value}** · channel {channel} · rules {s.rule_set_version} · "
            f"{len(s.actions)} actions"
        )

    async def _write(self, method: Callable[[Any, A], Awaitable[R]], arg: A) -> R:
        """A back-office call: local first on the hot path, a regular activity before it."""
        if self._hot:
            return await local_first(method, arg)
        return await workflow.execute_activity_method(method, arg, **BACKOFFICE)

    def _record(
        self, step: str, outcome: str, detail: str = "", attempt: Attempt | None = None
    ) -> None:
        # A channel's send also names the channel it went to and the key it carried.
        self._status.actions.append(
            ActionRecord(
                step=step,
                outcome=outcome,
                detail=detail,
                at=workflow.now(),
                system=attempt.channel.value if attempt else None,
                idempotency_key=attempt.idempotency_key if attempt else None,
            )
        )

    def _key(self, step: str) -> str:
        return idempotency_key(workflow.info().workflow_id, step)

    def _summary(self) -> str:
        # The conversation puts this in clarifying SMS: cleaned like every other value.
        tx = self._inp.request.transaction
        return clean_text(f"{tx.display_merchant()} {tx.display_amount()}", SUMMARY_MAX)

    def _sms(self, template: str, values: dict[str, str]) -> str:
        rules = self._rules
        assert rules is not None
        return render_sms(
            rules.templates[template],
            values,
            outside=OUTSIDE_FIELDS,
            max_segments=rules.sms_max_segments,
        )

    def _values(self) -> dict[str, str]:
        req, rules = self._inp.request, self._rules
        return {
            "fi_name": rules.fi_name if rules else self._inp.fi_name,
            "merchant": req.transaction.display_merchant(),
            "amount": req.transaction.display_amount(),
            "card_last4": req.transaction.card_last4,
            "code": self._status.reply_code or "",
            "occurred_at": req.transaction.occurred_at.isoformat(),
            "alert_type": req.alert_type,
        }
