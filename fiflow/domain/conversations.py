"""A customer's conversation on one channel address: open alerts and how a reply is routed."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, Field

from fiflow.domain.alerts import AlertOutcome, ReplyOutcome
from fiflow.domain.keys import pick_reply_code
from fiflow.domain.replies import ParsedReply, ReplyKind

SEEN_MESSAGE_IDS_KEPT = 500
CLOSED_ALERTS_KEPT = 20
ROUTING_LOG_KEPT = 50
# The highest per-window limit a deployment may set: the send times kept in the state are
# bounded by the limit, so this also bounds the state.
AUTO_REPLIES_MAX = 100


class OpenAlert(BaseModel):
    """An alert waiting for this address's reply."""

    alert_id: str
    reply_code: str
    summary: str  # "ACME Inc $912.00", for the clarifying message
    registered_at: datetime
    # Over the address's alert cap: the alert sent no SMS of its own; a digest lists it.
    merged: bool = False
    in_digest: bool = False  # a digest listing it went out


class ClosedAlert(BaseModel):
    """A recently closed alert, so a late reply gets told it expired."""

    alert_id: str
    reply_code: str
    outcome: AlertOutcome | None = None
    closed_at: datetime


class RegisterAlert(BaseModel):
    """Update `register_alert`: an alert now waits for a reply on this address.

    The conversation answers with the alert's reply code, picked there so that no two open
    alerts of the address ever share one (registrations are serialised by the workflow).
    """

    alert_id: str
    summary: str  # "ACME Inc $912.00", for the clarifying message
    registered_at: datetime
    # Set when the alert would go out by SMS: over the cap, it merges into a digest.
    cap: AlertCap | None = None


class AlertCap(BaseModel):
    """How many alerts one SMS address gets as messages of their own per window.

    Beyond it the alerts still open and wait for replies, but their texts merge: they gather
    for `merge_wait`, then one digest SMS lists them all with their codes.
    """

    max_alerts: int = Field(default=5, ge=1, le=100)
    window: timedelta = Field(default=timedelta(hours=1), gt=timedelta(0))
    merge_wait: timedelta = Field(default=timedelta(minutes=2), ge=timedelta(0))


class AlertRegistration(BaseModel):
    """What `register_alert` answers: the alert's reply code and whether it was merged."""

    reply_code: str
    merged: bool = False
    # The address sent STOP (as far as the conversation knows, stored or not yet): the
    # alert must not text it, even while the opt-out database has not taken the write.
    opted_out: bool = False


class PendingOptOut(BaseModel):
    """An opt-out (or opt-in) keyword the conversation has acted on but not yet stored."""

    message_id: str
    opted_out: bool
    keyword: str
    received_at: datetime


class SmsOptedOut(BaseModel):
    """Signal `sms_opted_out` to an open alert: its address sent STOP; no more SMS to it."""

    message_id: str
    at: datetime


class SmsOptedIn(BaseModel):
    """Signal `sms_opted_in` to an open alert: its address sent START after STOP; SMS again."""

    message_id: str
    at: datetime


class AlertClosed(BaseModel):
    """Signal `alert_closed`: the alert no longer takes replies."""

    alert_id: str
    outcome: AlertOutcome | None = None
    closed_at: datetime


class InboundMessage(BaseModel):
    """Signal `inbound_message`: one message from the customer, as the provider delivered it."""

    message_id: str
    body: str
    received_at: datetime


class Route(StrEnum):
    """What the conversation does with a message."""

    FORWARD = "forward"
    CLARIFY = "clarify"
    UNKNOWN_CODE = "unknown_code"
    NO_OPEN_ALERT = "no_open_alert"
    EXPIRED = "expired"
    NOT_UNDERSTOOD = "not_understood"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    DUPLICATE = "duplicate"


class RoutingDecision(BaseModel):
    """The routing of one message, kept in the conversation's log and the alert's result."""

    message_id: str
    route: Route
    reason: str
    alert_id: str | None = None
    outcome: ReplyOutcome | None = None
    candidates: list[str] = Field(default_factory=list)  # codes offered in a clarification
    at: datetime
    # The answer this route calls for was not sent: the address had used up its
    # unsolicited answers for the window (see AutoReplyLimit).
    suppressed: bool = False


class ConversationState(BaseModel):
    """Everything a conversation carries across continue-as-new."""

    open_alerts: list[OpenAlert] = Field(default_factory=list)
    closed_alerts: list[ClosedAlert] = Field(default_factory=list)
    seen_message_ids: list[str] = Field(default_factory=list)
    pending: list[InboundMessage] = Field(default_factory=list)
    routing_log: list[RoutingDecision] = Field(default_factory=list)
    messages_handled: int = 0
    # When the unsolicited answers still inside the window went out (at most the limit).
    auto_replies_sent: list[datetime] = Field(default_factory=list)
    answers_suppressed: int = 0
    # When the alerts still inside the cap's window were registered (at most the cap), and
    # when the digest of merged alerts is due (None: nothing merged waits).
    alerts_sent: list[datetime] = Field(default_factory=list)
    digest_due: datetime | None = None
    digests_sent: int = 0
    # The address's opt-out as this conversation last heard it (None: no keyword seen).
    # It takes effect here at once; the database learns it through `opt_out_writes`, which
    # are retried until stored and carried across continue-as-new.
    sms_opted_out: bool | None = None
    opt_out_writes: list[PendingOptOut] = Field(default_factory=list)


class AutoReplyLimit(BaseModel):
    """How many unsolicited answers one address gets per window; beyond it, silence."""

    max_answers: int = Field(default=3, ge=0, le=AUTO_REPLIES_MAX)
    window: timedelta = Field(default=timedelta(hours=1), gt=timedelta(0))


class ConversationInput(BaseModel):
    """The single argument of ConversationWorkflow."""

    channel: str = "sms"
    address: str  # the phone number: PII, only ever inside (encrypted) payloads
    address_digest: str
    fi_name: str = "Fiflow Bank"
    help_text: str = ""
    idle_timeout: timedelta = timedelta(days=3)
    continue_as_new_after_events: int = 4000
    # Fixed for the run (and its continuations), like a rule version: set by the starter.
    auto_replies: AutoReplyLimit = Field(default_factory=AutoReplyLimit)
    state: ConversationState = Field(default_factory=ConversationState)


class ConversationSnapshot(BaseModel):
    """Query `snapshot`: what ops and tests may see (no address)."""

    open_alerts: list[OpenAlert]
    closed_alerts: list[ClosedAlert]
    routing_log: list[RoutingDecision]
    messages_handled: int
    pending: int
    answers_suppressed: int = 0
    digests_sent: int = 0
    sms_opted_out: bool | None = None
    opt_out_writes_pending: int = 0  # keywords acted on, not yet stored in the database


# Everything the conversation says on its own rather than for an alert. An auto-responder
# (or someone flooding the number) gets one of these for every message it sends, so they
# are what the per-address limit bounds. Forwarding a reply to its alert is never limited,
# and neither is the opt-out confirmation, which carriers require once per opt-out (it is
# only sent when the opt-out state changes, so it cannot loop). The opt-in confirmation is
# limited: the opt-in itself always takes effect, and a STOP/START alternation then gets
# one answer per opt-out rather than one per message.
UNSOLICITED_ROUTES = frozenset(
    {
        Route.NO_OPEN_ALERT,
        Route.EXPIRED,
        Route.UNKNOWN_CODE,
        Route.NOT_UNDERSTOOD,
        Route.CLARIFY,
        Route.HELP,
        Route.OPT_IN,
    }
)


class AutoReplyBudget(NamedTuple):
    """Whether an unsolicited answer may go out, and the send times to keep in the state."""

    allowed: bool
    sent: list[datetime]


def spend_auto_reply(sent: list[datetime], limit: AutoReplyLimit, at: datetime) -> AutoReplyBudget:
    """Take one unsolicited answer from the address's sliding window, if one is left."""
    return take_from_window(sent, limit.max_answers, limit.window, at)


def take_from_window(
    taken: list[datetime], limit: int, window: timedelta, at: datetime
) -> AutoReplyBudget:
    """Take one use of a sliding window (at most `limit` per `window`), if one is left."""
    recent = [t for t in taken if at - t < window]
    if len(recent) >= limit:
        return AutoReplyBudget(False, keep_last(recent, limit))
    return AutoReplyBudget(True, keep_last([*recent, at], limit))


def route_message(
    message_id: str,
    parsed: ParsedReply,
    open_alerts: list[OpenAlert],
    closed_alerts: list[ClosedAlert],
    at: datetime,
) -> RoutingDecision:
    """Decide where one message goes (pure: the workflow carries it out)."""

    def decide(route: Route, reason: str, **kw: object) -> RoutingDecision:
        return RoutingDecision(message_id=message_id, route=route, reason=reason, at=at, **kw)  # type: ignore[arg-type]

    if parsed.kind is ReplyKind.STOP:
        return decide(Route.OPT_OUT, "opt-out keyword")
    if parsed.kind is ReplyKind.START:
        return decide(Route.OPT_IN, "opt-in keyword")
    if parsed.kind is ReplyKind.HELP:
        return decide(Route.HELP, "help keyword")

    codes = [a.reply_code for a in open_alerts]
    if parsed.kind is ReplyKind.UNKNOWN:
        return decide(Route.NOT_UNDERSTOOD, "no yes/no answer found", candidates=codes)

    outcome = ReplyOutcome.CONFIRM if parsed.kind is ReplyKind.YES else ReplyOutcome.CONTEST
    if parsed.code is not None:
        match = [a for a in open_alerts if a.reply_code == parsed.code]
        if len(match) == 1:
            return decide(
                Route.FORWARD,
                f"reply code {parsed.code}",
                alert_id=match[0].alert_id,
                outcome=outcome,
            )
        if not match:
            closed = [c for c in closed_alerts if c.reply_code == parsed.code]
            if closed:
                return decide(
                    Route.EXPIRED, f"code {parsed.code} closed", alert_id=closed[-1].alert_id
                )
            if open_alerts:
                return decide(Route.UNKNOWN_CODE, f"code {parsed.code} not open", candidates=codes)
            return decide(Route.NO_OPEN_ALERT, f"code {parsed.code}, nothing open")
        return decide(Route.CLARIFY, f"code {parsed.code} is ambiguous", candidates=codes)

    if len(open_alerts) == 1:
        return decide(
            Route.FORWARD,
            "single open alert",
            alert_id=open_alerts[0].alert_id,
            outcome=outcome,
        )
    if len(open_alerts) > 1:
        return decide(Route.CLARIFY, f"{len(open_alerts)} open alerts, no code", candidates=codes)
    if closed_alerts:
        return decide(Route.EXPIRED, "latest alert closed", alert_id=closed_alerts[-1].alert_id)
    return decide(Route.NO_OPEN_ALERT, "no alert open")


def accept_inbound(state: ConversationState, msg: InboundMessage) -> bool:
    """Queue a message for routing; False for a provider retry of a message ID already seen."""
    if msg.message_id in state.seen_message_ids:
        return False
    state.seen_message_ids = keep_last(
        [*state.seen_message_ids, msg.message_id], SEEN_MESSAGE_IDS_KEPT
    )
    state.pending.append(msg)
    return True


def register_alert(
    state: ConversationState, req: RegisterAlert, now: datetime, *, skip_closed_codes: bool
) -> AlertRegistration:
    """Open an alert on this address (or answer as before for one registered already).

    Its reply code is one no open alert uses and, with `skip_closed_codes`, none of the
    recently closed ones either: a late reply to a closed alert then reads "expired" rather
    than landing on a newer alert that happened to draw the same code.
    """
    # Known here the moment STOP is routed, stored or not: the alert then sends no SMS.
    opted_out = state.sms_opted_out is True
    for alert in state.open_alerts:
        if alert.alert_id == req.alert_id:
            return AlertRegistration(
                reply_code=alert.reply_code, merged=alert.merged, opted_out=opted_out
            )
    for closed in state.closed_alerts:
        if closed.alert_id == req.alert_id:
            return AlertRegistration(reply_code=closed.reply_code, opted_out=opted_out)
    in_use = {a.reply_code for a in state.open_alerts}
    if skip_closed_codes:
        in_use |= {c.reply_code for c in state.closed_alerts}
    code = pick_reply_code(req.alert_id, in_use)
    merged = False
    if req.cap is not None and not opted_out:  # it sends no SMS: nothing to merge
        allowed, state.alerts_sent = take_from_window(
            state.alerts_sent, req.cap.max_alerts, req.cap.window, now
        )
        merged = not allowed
        if merged and state.digest_due is None:
            state.digest_due = now + req.cap.merge_wait
    state.open_alerts.append(
        OpenAlert(
            alert_id=req.alert_id,
            reply_code=code,
            summary=req.summary,
            registered_at=req.registered_at,
            merged=merged,
        )
    )
    return AlertRegistration(reply_code=code, merged=merged, opted_out=opted_out)


def close_alert(
    state: ConversationState,
    alert_id: str,
    closed_at: datetime,
    outcome: AlertOutcome | None = None,
) -> None:
    """The alert takes no more replies; a later reply with its code is told it expired."""
    found = [a for a in state.open_alerts if a.alert_id == alert_id]
    state.open_alerts = [a for a in state.open_alerts if a.alert_id != alert_id]
    for closed in state.closed_alerts:
        if closed.alert_id == alert_id:
            closed.outcome = outcome or closed.outcome
            return
    if found:
        entry = ClosedAlert(
            alert_id=alert_id,
            reply_code=found[0].reply_code,
            outcome=outcome,
            closed_at=closed_at,
        )
        state.closed_alerts = keep_last([*state.closed_alerts, entry], CLOSED_ALERTS_KEPT)


def keep_last(items: list, limit: int) -> list:
    """The newest `limit` items (state that must not grow without bound)."""
    # Not items[-limit:]: with limit 0 that slice is the whole list.
    return items[max(len(items) - limit, 0) :]
