"""InformationalAlertWorkflow: one message about a transaction (or a digest), no reply expected.

Light on purpose (the FI pays per Temporal action): the rule and profile reads are local
activities in the first workflow task, then one send activity per channel tried, then one
search-attribute upsert with the outcome. A notice that falls in the customer's quiet hours
adds one more local activity (the zone arithmetic), one upsert and one durable timer.

Opt-outs are checked by `send_sms` itself against the opt-out store, as for follow-ups: a
STOP means no SMS from a notice (push still may). Notices are not registered with the
SMS conversation (nothing to reply to), so they neither get a reply code nor count against
the per-number alert cap, which is about alerts waiting for replies; a burst of notices to
one customer is avoided upstream by the digest (several transactions, one message).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from fiflow.activities.backoffice import CrmActivities, GetCustomer
    from fiflow.activities.messaging import Delivery
    from fiflow.activities.metrics import MetricsActivities
    from fiflow.activities.notices import LoadNoticeRules, NoticeActivities, NoticeSendTime
    from fiflow.domain import search_attributes as sa
    from fiflow.domain.alerts import ActionRecord
    from fiflow.domain.customers import Channel, Customer
    from fiflow.domain.keys import idempotency_key
    from fiflow.domain.metrics import RecordMetricEvents, notice_events
    from fiflow.domain.notices import (
        NoticeInput,
        NoticeResult,
        NoticeStatus,
        notice_channels,
        notice_reasons,
        notice_text,
        push_title,
    )
    from fiflow.domain.rules import NoticeRules
    from fiflow.workflows.failures import cause_of
    from fiflow.workflows.options import METRICS, QUICK
    from fiflow.workflows.reach import Attempt, Message, reach

# Backoffs over a second wait on a workflow timer, not in the worker (as the fraud alert's
# CRM read): an outage shows in the history and the workflow task does not stay open.
CRM_READ: dict[str, Any] = {**QUICK, "local_retry_threshold": timedelta(seconds=1)}
OPTED_OUT = Delivery.SUPPRESSED_OPTED_OUT.skip_reason()


@workflow.defn
class InformationalAlertWorkflow:
    """Tells the customer once, on the chosen channel, outside their quiet hours; records it."""

    @workflow.init
    def __init__(self, inp: NoticeInput) -> None:
        req = inp.request
        self._result = NoticeResult(
            notice_id=inp.notice_id,
            alert_type=req.alert_type,
            customer_id=req.customer_id,
            reasons=notice_reasons(req),
            items=len(req.items),
            timings={"received": inp.received_at},
        )
        self._search_updates: list[SearchAttributeUpdate] = []

    @workflow.query(name="status")
    def status(self) -> NoticeResult:
        """The notice as it stands."""
        return self._result

    @workflow.run
    async def run(self, inp: NoticeInput) -> NoticeResult:
        """Read the rules and the customer, wait out quiet hours if need be, send once."""
        r, req = self._result, inp.request
        # Both reads at once: one workflow task, and one action for the two local activities.
        rules_read = workflow.start_local_activity_method(
            NoticeActivities.load_notice_rules, LoadNoticeRules(), **QUICK
        )
        customer_read = workflow.start_local_activity_method(
            CrmActivities.get_customer, GetCustomer(customer_id=req.customer_id), **CRM_READ
        )
        customer: Customer | None
        try:
            customer = await customer_read
        except FailureError as err:
            # An unknown customer, or the CRM down past the read's budget: nobody to tell.
            customer = None
            r.path.append(f"customer profile unavailable ({cause_of(err)})")
        rules = await rules_read
        r.rule_set_version = rules.version
        self._search_updates.append(sa.RULE_SET_VERSION.value_set(rules.version))

        channels = notice_channels(customer, req.channel) if customer else []
        if customer is None or not channels:
            if customer is not None:
                r.path.append("no address on any channel")
            self._finish(NoticeStatus.NO_CHANNEL)
            await self._record_metrics(inp)
            return r

        if req.quiet_hours_ok:
            r.path.append("may arrive in quiet hours")
        else:
            await self._wait_for_quiet_hours(rules, customer)

        text = notice_text(rules, req)
        message = Message(
            purpose=f"notice:{req.alert_type}",
            sms=text,
            push_title=push_title(rules),
            push_body=text,
            push_data={"notice_id": inp.notice_id},
        )
        workflow_id = workflow.info().workflow_id
        channel, attempts = await reach(
            customer, channels, message, lambda c: idempotency_key(workflow_id, f"send:{c.value}")
        )
        for attempt in attempts:
            self._record(attempt)
        self._finish(self._status_after(channel, attempts))
        await self._record_metrics(inp)
        return r

    # --- steps ----------------------------------------------------------------------------

    async def _wait_for_quiet_hours(self, rules: NoticeRules, customer: Customer) -> None:
        """Sleep (a durable timer) until the customer's quiet hours end, if they are in them."""
        quiet = rules.policy.quiet_hours
        if quiet is None:
            return
        r, now = self._result, workflow.now()
        send_at = await workflow.execute_local_activity_method(
            NoticeActivities.notice_send_time,
            NoticeSendTime(now=now, quiet_hours=quiet, customer_zone=customer.timezone),
            **QUICK,
        )
        if send_at <= now:
            return
        r.timings["send_after"] = send_at
        r.path.append(f"quiet hours: waiting until {send_at.isoformat()}")
        self._set_status(NoticeStatus.WAITING_QUIET_HOURS)
        await workflow.sleep(send_at - now)

    def _status_after(self, channel: Channel | None, attempts: list[Attempt]) -> NoticeStatus:
        r = self._result
        if channel is not None:
            sent = attempts[-1]
            r.channel = channel
            r.message_id = sent.provider_id
            r.idempotency_key = sent.idempotency_key
            r.timings["sent"] = workflow.now()
            self._search_updates.append(sa.CHANNEL.value_set(channel.value))
            return NoticeStatus.SENT
        if any(a.outcome == "skipped" and a.detail == OPTED_OUT for a in attempts):
            return NoticeStatus.SKIPPED_OPTED_OUT
        if any(a.outcome == "failed" for a in attempts):
            return NoticeStatus.FAILED
        return NoticeStatus.NO_CHANNEL

    # --- helpers --------------------------------------------------------------------------

    async def _record_metrics(self, inp: NoticeInput) -> None:
        """Record the notice's business fact once (one local activity, one marker event).

        Histories written before recorded none (docs/architecture.md, section 7).
        """
        if not workflow.patched("metrics-notice"):
            return
        events = notice_events(workflow.info().workflow_id, self._result, inp.request.origin.value)
        try:
            await workflow.execute_local_activity_method(
                MetricsActivities.record_metric_events,
                RecordMetricEvents(events=events),
                **METRICS,
            )
        except FailureError as err:
            self._result.path.append(f"metrics not recorded ({cause_of(err)})")

    def _finish(self, status: NoticeStatus) -> None:
        self._result.timings["completed"] = workflow.now()
        self._set_status(status)

    def _set_status(self, status: NoticeStatus) -> None:
        r = self._result
        r.status = status
        # One upsert per state change, carrying whatever else changed since the last one.
        workflow.upsert_search_attributes(
            [*self._search_updates, sa.ALERT_STATE.value_set(status.value)]
        )
        self._search_updates = []
        channel = r.channel.value if r.channel else "none"
        workflow.set_current_details(
            f"**{status.value}** · channel {channel} · rules {r.rule_set_version} · "
            f"{r.items} transaction(s)"
        )

    def _record(self, attempt: Attempt) -> None:
        self._result.attempts.append(
            ActionRecord(
                step=f"send_{attempt.channel.value}",
                outcome=attempt.outcome,
                detail=attempt.detail,
                at=workflow.now(),
                system=attempt.channel.value,
                idempotency_key=attempt.idempotency_key,
            )
        )
