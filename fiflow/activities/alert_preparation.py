"""Preparing a fraud alert in one call: its rules, its customer, its SMS conversation.

The alert's hot path runs this as one local activity (one marker event) instead of three.
Each part is the same activity the step-by-step path calls, with the same guarantees: the
reads have no side effects, and the registration is idempotent (its update ID is the
alert's, and the conversation returns a known alert's code unchanged), so a retry of the
whole is safe.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio import activity

from fiflow.activities.backoffice import CrmActivities, GetCustomer
from fiflow.activities.conversations import (
    ConversationActivities,
    RegisterAlertWithConversation,
    Registration,
)
from fiflow.activities.rules import LoadAlertRules, RuleActivities
from fiflow.domain.customers import Channel, Customer, channel_order
from fiflow.domain.rules import AlertRules


class PrepareAlert(BaseModel):
    """What the alert needs to know to prepare itself."""

    alert_id: str
    alert_type: str
    customer_id: str
    summary: str  # what the conversation's clarifying texts call the alert
    registered_at: datetime
    # The profile the alert's starter read a moment ago (AlertInput.customer): no CRM read.
    customer: Customer | None = None


class PreparedAlert(BaseModel):
    """The rules the alert goes by, its customer, and its conversation (None without a phone)."""

    rules: AlertRules
    customer: Customer
    registration: Registration | None = None


class AlertPreparation:
    """Composes the rule, CRM and conversation activities into one call."""

    def __init__(
        self, rules: RuleActivities, crm: CrmActivities, conversations: ConversationActivities
    ):
        self._rules = rules
        self._crm = crm
        self._conversations = conversations

    @activity.defn(name="prepare_alert")
    async def prepare_alert(self, req: PrepareAlert) -> PreparedAlert:
        """Load the rules, read the customer, register with the conversation (if texted)."""
        rules = await self._rules.load_alert_rules(LoadAlertRules(alert_type=req.alert_type))
        customer = req.customer or await self._crm.get_customer(
            GetCustomer(customer_id=req.customer_id)
        )
        if not customer.phone:
            return PreparedAlert(rules=rules, customer=customer)
        # The cap counts texts: only an alert that goes out by SMS first can be merged.
        by_sms = channel_order(customer)[:1] == [Channel.SMS]
        registration = await self._conversations.register_alert(
            RegisterAlertWithConversation(
                address=customer.phone,
                alert_id=req.alert_id,
                summary=req.summary,
                registered_at=req.registered_at,
                cap=rules.sms_alert_cap if by_sms else None,
            )
        )
        return PreparedAlert(rules=rules, customer=customer, registration=registration)
