"""ConversationWorkflow: one per SMS address — knows the open alerts and routes every message."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, FailureError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from fiflow.activities.conversations import AlertsStillRunning, ConversationActivities
    from fiflow.activities.messaging import MessagingActivities, SendSms, SetSmsOptOut
    from fiflow.domain import messages
    from fiflow.domain.alerts import CustomerReply
    from fiflow.domain.conversations import (
        ROUTING_LOG_KEPT,
        UNSOLICITED_ROUTES,
        AlertClosed,
        AlertRegistration,
        ConversationInput,
        ConversationSnapshot,
        InboundMessage,
        PendingOptOut,
        RegisterAlert,
        Route,
        RoutingDecision,
        SmsOptedIn,
        SmsOptedOut,
        accept_inbound,
        close_alert,
        keep_last,
        register_alert,
        route_message,
        spend_auto_reply,
    )
    from fiflow.domain.customers import Channel
    from fiflow.domain.keys import alert_workflow_id, idempotency_key
    from fiflow.domain.replies import ParsedReply, parse_reply
    from fiflow.workflows.options import BACKOFFICE, CRITICAL_WRITE, QUICK


# Routes whose answer asks the customer to choose among the open alerts: worth making sure
# each of them still runs (rare, unlike a plain YES or NO, so the look costs little).
LISTS_OPEN_ALERTS = frozenset({Route.CLARIFY, Route.UNKNOWN_CODE})
# Asked first in every run: runs that take it take every patch below without asking (one
# marker per run, in its first workflow task, rather than one in each task that first
# reaches a patched step) and leave the idle timer running. Histories written before ask
# each patch where they did (docs/architecture.md, section 7).
LEAN = "conversation-lean"


@workflow.defn
class ConversationWorkflow:
    """Entity workflow for one customer address; continues-as-new with its state."""

    @workflow.init
    def __init__(self, inp: ConversationInput) -> None:
        self._inp = inp
        self._state = inp.state.model_copy(deep=True)
        # Stores the opt-out keywords in the background: the database may be down for days,
        # and meanwhile replies must still be routed and alerts registered.
        self._writer: asyncio.Task[None] | None = None
        self._confirming = False  # the writer is sending a stored keyword's confirmation
        # The lean path's idle period: since when nothing was open or handled, and its timer.
        self._idle_since: datetime | None = None
        self._idle_timer: asyncio.Task[None] | None = None

    # --- handlers (they only record; the main loop does the work, in arrival order) ----

    @workflow.update(name="register_alert")
    def register_alert(self, req: RegisterAlert) -> AlertRegistration:
        """An alert now waits for this address's reply: its reply code, and whether it merged.

        Over the cap, the alert is merged: it sends no SMS of its own and the next digest
        lists it. Idempotent: an alert registered before (a retried activity) gets the same
        answer back.
        """
        st = self._state
        known = {a.alert_id for a in st.open_alerts} | {c.alert_id for c in st.closed_alerts}
        if req.alert_id in known:
            return register_alert(st, req, workflow.now(), skip_closed_codes=False)
        # Histories written before drew codes among the open alerts' only (section 7).
        skip_closed = self._patched("reply-codes-skip-recently-closed")
        registration = register_alert(st, req, workflow.now(), skip_closed_codes=skip_closed)
        self._idle_since = None  # no longer idle (no command: a mark for the lean path)
        self._details()
        return registration

    @workflow.signal(name="alert_closed")
    def alert_closed(self, sig: AlertClosed) -> None:
        """An alert stopped taking replies."""
        self._close(sig.alert_id, sig)

    @workflow.signal(name="inbound_message")
    def inbound_message(self, msg: InboundMessage) -> None:
        """A message from the customer; provider retries of the same message ID are dropped."""
        accept_inbound(self._state, msg)

    @workflow.query(name="snapshot")
    def snapshot(self) -> ConversationSnapshot:
        """Open alerts, recent closures and routing decisions (no address)."""
        st = self._state
        return ConversationSnapshot(
            open_alerts=st.open_alerts,
            closed_alerts=st.closed_alerts,
            routing_log=st.routing_log,
            messages_handled=st.messages_handled,
            pending=len(st.pending),
            answers_suppressed=st.answers_suppressed,
            digests_sent=st.digests_sent,
            sms_opted_out=st.sms_opted_out,
            opt_out_writes_pending=len(st.opt_out_writes),
        )

    # --- main loop ------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: ConversationInput) -> ConversationSnapshot:
        """Handle messages until idle with nothing open, continuing-as-new when history grows."""
        st = self._state
        # Before any other patch or command: which path this run takes is settled here.
        self._lean()
        self._details()
        self._start_writer()  # keywords a previous run acted on but could not store yet
        while True:
            if st.open_alerts:
                # Not idle (an alert opened, merged into a digest or not): a new idle period,
                # with its own timer, starts when the last one closes.
                self._end_idle_period()
            if st.digest_due is not None:
                # Merged alerts gather until their digest is due: the one timer an address
                # over its alert cap pays. Messages are still handled meanwhile.
                wait = st.digest_due - workflow.now()
                if wait > timedelta(0):
                    with contextlib.suppress(TimeoutError):
                        await workflow.wait_condition(self._has_work, timeout=wait)
                if workflow.now() >= st.digest_due:
                    await self._send_digest()
            elif st.open_alerts:
                # No timer while alerts are open: a timer per wait would cost two events
                # and often a workflow task for every message the conversation handles.
                await workflow.wait_condition(
                    lambda: self._has_work() or not st.open_alerts or st.digest_due is not None
                )
            elif self._lean():
                if await self._idle_ran_out(inp.idle_timeout):
                    break
            else:
                try:
                    await workflow.wait_condition(
                        lambda: (
                            bool(st.pending) or self._history_too_long() or bool(st.open_alerts)
                        ),
                        timeout=inp.idle_timeout,
                    )
                except TimeoutError:
                    # Never end with an opt-out not yet stored: it would be lost.
                    if not st.open_alerts and not st.pending and not self._writes_pending():
                        break
            # Checked between messages too: under a steady stream the queue never empties,
            # and what is still queued goes across in the state. Patched: histories written
            # before drained the whole queue first (docs/architecture.md, section 7).
            mid_queue = self._patched("continue-as-new-mid-queue")
            while st.pending and not (mid_queue and self._history_too_long()):
                await self._handle(st.pending[0])
                st.pending.pop(0)
                st.messages_handled += 1
                self._idle_since = None  # the idle period starts again after it
            if self._history_too_long():
                await self._stop_writer()
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(inp.model_copy(update={"state": st}))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.snapshot()

    async def _handle(self, msg: InboundMessage) -> None:
        st, fi = self._state, self._inp.fi_name
        parsed = self._parse(msg.body)
        decision = route_message(
            msg.message_id, parsed, st.open_alerts, st.closed_alerts, workflow.now()
        )
        # About to ask the customer to choose among open alerts: drop any whose workflow
        # ended without telling us (terminated by an operator, failed), then decide again.
        if (
            decision.route in LISTS_OPEN_ALERTS
            and self._patched("prune-ended-alerts")
            and await self._prune_ended_alerts()
        ):
            decision = route_message(
                msg.message_id, parsed, st.open_alerts, st.closed_alerts, workflow.now()
            )
        st.routing_log = keep_last([*st.routing_log, decision], ROUTING_LOG_KEPT)
        match decision.route:
            case Route.FORWARD:
                if not await self._forward(msg, decision):
                    # The alert ended meanwhile: this is an "expired" answer, and limited as one.
                    await self._send(msg, decision, messages.expired(fi), route=Route.EXPIRED)
            case Route.CLARIFY:
                await self._send(msg, decision, messages.clarify(fi, st.open_alerts))
            case Route.UNKNOWN_CODE:
                code = decision.reason.split()[1]
                await self._send(msg, decision, messages.unknown_code(fi, code, st.open_alerts))
            case Route.NOT_UNDERSTOOD:
                await self._send(msg, decision, messages.not_understood(fi, st.open_alerts))
            case Route.NO_OPEN_ALERT:
                await self._send(msg, decision, messages.no_open_alert(fi))
            case Route.EXPIRED:
                await self._send(msg, decision, messages.expired(fi))
            case Route.OPT_OUT | Route.OPT_IN if self._patched("opt-out-effective-at-once"):
                await self._opt_out_at_once(msg, decision.route is Route.OPT_OUT)
            case Route.OPT_OUT | Route.OPT_IN:
                # Histories written before: the keyword was stored inline (a database down
                # past QUICK's budget failed the conversation).
                opting_out = decision.route is Route.OPT_OUT
                changed = await workflow.execute_activity_method(
                    MessagingActivities.set_sms_opt_out,
                    SetSmsOptOut(
                        address=self._inp.address,
                        opted_out=opting_out,
                        keyword=msg.body.strip()[:32].upper(),
                        source_message_id=msg.message_id,
                        at=msg.received_at,
                    ),
                    **QUICK,
                )
                if changed:
                    text = messages.opted_out(fi) if opting_out else messages.opted_in(fi)
                    await self._send(msg, decision, text, ignore_opt_out=True)
            case Route.HELP:
                await self._send(msg, decision, self._inp.help_text, ignore_opt_out=True)
        self._details()

    def _parse(self, body: str) -> ParsedReply:
        """The message's meaning; "not me 4821" is read as NO 4821 where the patch applies."""
        parsed = parse_reply(body)
        if self._lean():
            return parsed
        old = parse_reply(body, glue_across_spaces=True)
        # Asked only when the readings differ, so other messages' histories get no marker.
        if parsed != old and not workflow.patched("answer-words-before-code"):
            return old
        return parsed

    async def _forward(self, msg: InboundMessage, decision: RoutingDecision) -> bool:
        """Signal the reply to its alert; False if the alert is no longer running."""
        assert decision.alert_id is not None and decision.outcome is not None
        # Answered: later code-less replies must not count this alert as still open.
        self._close(
            decision.alert_id, AlertClosed(alert_id=decision.alert_id, closed_at=workflow.now())
        )
        handle = workflow.get_external_workflow_handle(alert_workflow_id(decision.alert_id))
        try:
            await handle.signal(
                "customer_reply",
                CustomerReply(
                    outcome=decision.outcome,
                    channel=Channel.SMS,
                    message_id=msg.message_id,
                    received_at=msg.received_at,
                    routed_by=decision.reason,
                ),
            )
        except FailureError:
            return False
        return True

    async def _send(
        self,
        msg: InboundMessage,
        decision: RoutingDecision,
        body: str,
        *,
        route: Route | None = None,
        ignore_opt_out: bool = False,
    ) -> None:
        """Answer a message; an unsolicited answer only within the address's limit."""
        route = decision.route if route is None else route
        if not ignore_opt_out and self._state.sms_opted_out is True:
            # STOP came (stored or not yet): no answer goes out, not even through send_sms.
            return
        if route in UNSOLICITED_ROUTES and not self._spend_auto_reply(decision):
            return
        await self._text(
            body,
            f"conversation:{route.value}",
            f"answer:{msg.message_id}",
            ignore_opt_out=ignore_opt_out,
        )

    async def _text(
        self, body: str, purpose: str, step: str, *, ignore_opt_out: bool = False
    ) -> None:
        """One SMS to this address; a send that fails for good is logged (nothing else waits)."""
        try:
            await workflow.execute_activity_method(
                MessagingActivities.send_sms,
                SendSms(
                    to=self._inp.address,
                    body=body,
                    purpose=purpose,
                    idempotency_key=idempotency_key(workflow.info().workflow_id, step),
                    ignore_opt_out=ignore_opt_out,
                ),
                **BACKOFFICE,
            )
        except ActivityError as err:
            # A digest's alerts still run their own escalation (resend, callback).
            workflow.logger.warning("%s could not be sent: %s", purpose, type(err.cause).__name__)

    async def _send_digest(self) -> None:
        """One SMS listing every merged alert still open that no digest listed yet."""
        st = self._state
        st.digest_due = None
        listed = [a for a in st.open_alerts if a.merged and not a.in_digest]
        if not listed:
            return  # all answered or closed before the digest was due
        if st.sms_opted_out is True:
            # The merged alerts run their own escalation (push, callback) without a text.
            return
        for alert in listed:
            alert.in_digest = True
        st.digests_sent += 1
        body = messages.digest(self._inp.fi_name, listed)
        await self._text(body, "alert:digest", f"digest:{st.digests_sent}")
        self._details()

    # --- opt-out: effective at once, stored as soon as the database takes it --------------

    async def _opt_out_at_once(self, msg: InboundMessage, opting_out: bool) -> None:
        """Act on STOP/START now; the database write is queued and retried until stored."""
        st = self._state
        was_out = st.sms_opted_out is True
        st.sms_opted_out = opting_out
        st.opt_out_writes.append(
            PendingOptOut(
                message_id=msg.message_id,
                opted_out=opting_out,
                keyword=msg.body.strip()[:32].upper(),
                received_at=msg.received_at,
            )
        )
        self._start_writer()
        if opting_out and not was_out:
            # Alerts registered before the STOP text through send_sms, which reads the
            # database: until the write lands they learn it from here.
            for alert in list(st.open_alerts):
                handle = workflow.get_external_workflow_handle(alert_workflow_id(alert.alert_id))
                with contextlib.suppress(FailureError):  # already ended: it texts no more
                    await handle.signal(
                        "sms_opted_out", SmsOptedOut(message_id=msg.message_id, at=workflow.now())
                    )
        elif (
            not opting_out
            and was_out
            and st.open_alerts
            and self._patched("start-signals-open-alerts")
        ):
            # START after STOP: the alerts told of the STOP may text the address again.
            # Histories written before left them refusing SMS (docs/architecture.md, section 7).
            for alert in list(st.open_alerts):
                handle = workflow.get_external_workflow_handle(alert_workflow_id(alert.alert_id))
                with contextlib.suppress(FailureError):  # already ended: nothing to tell
                    await handle.signal(
                        "sms_opted_in", SmsOptedIn(message_id=msg.message_id, at=workflow.now())
                    )

    # --- idleness on the lean path: one timer per idle period ----------------------------

    async def _idle_ran_out(self, idle_timeout: timedelta) -> bool:
        """Wait while idle; True once idle for `idle_timeout` with nothing left to store.

        The timer is started once per idle period and left running: a message handled
        meanwhile does not cancel and restart it (a timer each). If it fires before the
        period's end (a message moved the end on), one more timer covers what is left.
        """
        st = self._state
        now = workflow.now()
        if self._idle_since is None:
            self._idle_since = now
        end = self._idle_since + idle_timeout
        timer = self._idle_timer
        if timer is None or timer.done():
            timer = self._idle_timer = asyncio.create_task(workflow.sleep(end - now))
        await workflow.wait_condition(
            lambda: (
                bool(st.pending) or self._history_too_long() or bool(st.open_alerts) or timer.done()
            )
        )
        if not timer.done() or workflow.now() < end:
            return False
        if st.open_alerts or st.pending or self._writes_pending():
            # Never end with an opt-out not yet stored (it would be lost): wait another period.
            self._idle_since = None
            return False
        return True

    def _end_idle_period(self) -> None:
        """An alert opened: the idle period is over, and so is its timer (a new one follows)."""
        self._idle_since = None
        if self._idle_timer is not None and not self._idle_timer.done():
            self._idle_timer.cancel()
        self._idle_timer = None

    def _start_writer(self) -> None:
        if self._state.opt_out_writes and (self._writer is None or self._writer.done()):
            self._writer = asyncio.create_task(self._store_opt_outs())

    async def _store_opt_outs(self) -> None:
        """Store the queued keywords in order, each retried until the database takes it."""
        st = self._state
        while st.opt_out_writes:
            pending = st.opt_out_writes[0]
            self._details()
            try:
                changed = await workflow.execute_activity_method(
                    MessagingActivities.set_sms_opt_out,
                    SetSmsOptOut(
                        address=self._inp.address,
                        opted_out=pending.opted_out,
                        keyword=pending.keyword,
                        source_message_id=pending.message_id,
                        at=pending.received_at,
                    ),
                    **CRITICAL_WRITE,
                )
            except ActivityError as err:
                if is_cancelled_exception(err):
                    raise  # continuing as new: the write goes across in the state
                # Only a non-retryable error ends CRITICAL_WRITE (an invalid address).
                workflow.logger.warning("opt-out not stored: %s", type(err.cause).__name__)
                changed = False
            self._confirming = True
            st.opt_out_writes.pop(0)
            self._details()
            if changed:
                await self._confirm_keyword(pending)
            self._confirming = False

    async def _confirm_keyword(self, pending: PendingOptOut) -> None:
        """The confirmation carriers require, once the keyword changed the stored state."""
        fi = self._inp.fi_name
        decision = next(
            (d for d in reversed(self._state.routing_log) if d.message_id == pending.message_id),
            None,
        )
        route = Route.OPT_OUT if pending.opted_out else Route.OPT_IN
        if decision is None:  # rolled out of the log during a long outage
            decision = RoutingDecision(
                message_id=pending.message_id, route=route, reason="keyword", at=workflow.now()
            )
        msg = InboundMessage(
            message_id=pending.message_id, body=pending.keyword, received_at=pending.received_at
        )
        text = messages.opted_out(fi) if pending.opted_out else messages.opted_in(fi)
        await self._send(msg, decision, text, route=route, ignore_opt_out=True)

    def _writes_pending(self) -> bool:
        return bool(self._state.opt_out_writes) or self._confirming

    async def _stop_writer(self) -> None:
        """Before continue-as-new: cancel a write still retrying; the state carries it."""
        writer = self._writer
        if writer is None or writer.done():
            return
        await workflow.wait_condition(lambda: not self._confirming)
        if writer.done():
            return
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, ActivityError):
            await writer

    async def _prune_ended_alerts(self) -> bool:
        """Close the open alerts whose workflows no longer run; True if any was."""
        st = self._state
        try:
            running = set(
                await workflow.execute_local_activity_method(
                    ConversationActivities.alerts_still_running,
                    AlertsStillRunning(alert_ids=[a.alert_id for a in st.open_alerts]),
                    **QUICK,
                )
            )
        except ActivityError:
            return False  # unsure: keep them all, as before
        ended = [a.alert_id for a in st.open_alerts if a.alert_id not in running]
        for alert_id in ended:
            self._close(alert_id, AlertClosed(alert_id=alert_id, closed_at=workflow.now()))
        return bool(ended)

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _lean() -> bool:
        """Whether this run took LEAN (asked first thing in each run; the SDK memoizes it)."""
        return workflow.patched(LEAN)

    def _patched(self, patch: str) -> bool:
        """A patch's answer: True without a marker of its own on the lean path."""
        return self._lean() or workflow.patched(patch)

    def _spend_auto_reply(self, decision: RoutingDecision) -> bool:
        """Take an unsolicited answer from the window; if none is left, record the silence."""
        st = self._state
        allowed, st.auto_replies_sent = spend_auto_reply(
            st.auto_replies_sent, self._inp.auto_replies, workflow.now()
        )
        if not allowed:
            # `decision` is the routing log's entry, so the log shows the silence.
            decision.suppressed = True
            st.answers_suppressed += 1
        return allowed

    def _close(self, alert_id: str, sig: AlertClosed) -> None:
        close_alert(self._state, alert_id, sig.closed_at, sig.outcome)
        # The idle period, if this was the last open alert, starts now (lean path).
        self._idle_since = None
        self._details()

    def _has_work(self) -> bool:
        return bool(self._state.pending) or self._history_too_long()

    def _history_too_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._inp.continue_as_new_after_events
        )

    def _details(self) -> None:
        st = self._state
        workflow.set_current_details(
            f"{len(st.open_alerts)} open alert(s) · {st.messages_handled} message(s) handled"
            + (f" · {st.answers_suppressed} answer(s) suppressed" if st.answers_suppressed else "")
            + (
                " · opt-out not yet stored: waiting for the opt-out database, retrying"
                " (no SMS goes to this address meanwhile)"
                if st.opt_out_writes and st.opt_out_writes[0].opted_out
                else " · opt-in not yet stored: waiting for the opt-out database, retrying"
                if st.opt_out_writes
                else ""
            )
        )
