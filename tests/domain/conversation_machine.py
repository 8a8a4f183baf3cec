"""ConversationWorkflow's state handling without Temporal, for property and trial tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fiflow.domain.alerts import AlertOutcome
from fiflow.domain.conversations import (
    ConversationState,
    InboundMessage,
    RegisterAlert,
    Route,
    RoutingDecision,
    accept_inbound,
    close_alert,
    register_alert,
    route_message,
)
from fiflow.domain.replies import parse_reply


@dataclass
class Machine:
    """The conversation's domain code, driven as the workflow drives it.

    `accept_inbound` for every delivery, then `parse_reply` and `route_message` for each
    queued message in arrival order; `close_alert` on a forward and on an alert's own
    close; `register_alert` for each new alert.
    """

    state: ConversationState = field(default_factory=ConversationState)
    decisions: list[RoutingDecision] = field(default_factory=list)

    def register(self, alert_id: str, at: datetime) -> str:
        req = RegisterAlert(alert_id=alert_id, summary=f"ACME {alert_id}", registered_at=at)
        return register_alert(self.state, req, at, skip_closed_codes=True).reply_code

    def alert_closed(self, alert_id: str, at: datetime) -> None:
        close_alert(self.state, alert_id, at, AlertOutcome.NO_REPLY)

    def deliver(self, msg: InboundMessage, at: datetime) -> None:
        accept_inbound(self.state, msg)
        st_ = self.state
        while st_.pending:
            queued = st_.pending.pop(0)
            decision = route_message(
                queued.message_id, parse_reply(queued.body), st_.open_alerts, st_.closed_alerts, at
            )
            self.decisions.append(decision)
            if decision.route is Route.FORWARD:
                assert decision.alert_id is not None
                close_alert(st_, decision.alert_id, at)
            elif decision.route in (Route.OPT_OUT, Route.OPT_IN):
                st_.sms_opted_out = decision.route is Route.OPT_OUT
