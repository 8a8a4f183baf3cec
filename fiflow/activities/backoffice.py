"""Activities over the FI's back-office systems: CRM, fraud, cards, contact center."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from fiflow.activities.errors import business_errors_are_final
from fiflow.domain.customers import Customer
from fiflow.integrations.cards import CardClient
from fiflow.integrations.contact_center import ContactCenterClient
from fiflow.integrations.crm import CrmClient
from fiflow.integrations.fraud import FraudClient


class GetCustomer(BaseModel):
    """Customer to read."""

    customer_id: str


class AddCrmNote(BaseModel):
    """A note on the customer's CRM record."""

    customer_id: str
    text: str
    category: str
    idempotency_key: str


class RecordFraudOutcome(BaseModel):
    """A case outcome for the fraud system."""

    case_ref: str
    customer_id: str
    outcome: str
    alert_type: str
    idempotency_key: str


class SetCardBlocked(BaseModel):
    """Block (or unblock) one card."""

    customer_id: str
    card_last4: str
    blocked: bool
    reason: str
    idempotency_key: str


class ScheduleCallback(BaseModel):
    """A contact-center callback."""

    customer_id: str
    reason: str
    priority: str
    reference: str
    idempotency_key: str


class CrmActivities:
    """CRM reads and notes."""

    def __init__(self, client: CrmClient):
        self._crm = client

    @activity.defn(name="get_customer")
    @business_errors_are_final
    async def get_customer(self, req: GetCustomer) -> Customer:
        """The customer's profile."""
        return await self._crm.get_customer(req.customer_id)

    @activity.defn(name="add_crm_note")
    @business_errors_are_final
    async def add_note(self, req: AddCrmNote) -> str:
        """Add a note; returns its ID."""
        return await self._crm.add_note(
            req.customer_id, req.text, req.category, req.idempotency_key
        )


class FraudActivities:
    """Fraud-system writes."""

    def __init__(self, client: FraudClient):
        self._fraud = client

    @activity.defn(name="record_fraud_outcome")
    @business_errors_are_final
    async def record_outcome(self, req: RecordFraudOutcome) -> str:
        """Record a case outcome; returns the case ID."""
        return await self._fraud.record_outcome(
            req.case_ref, req.customer_id, req.outcome, req.alert_type, req.idempotency_key
        )


class CardActivities:
    """Card-system writes."""

    def __init__(self, client: CardClient):
        self._cards = client

    @activity.defn(name="set_card_blocked")
    @business_errors_are_final
    async def set_blocked(self, req: SetCardBlocked) -> str:
        """Block or unblock; returns the card's new status."""
        return await self._cards.set_blocked(
            req.customer_id, req.card_last4, req.blocked, req.reason, req.idempotency_key
        )


class ContactCenterActivities:
    """Contact-center bookings."""

    def __init__(self, client: ContactCenterClient):
        self._cc = client

    @activity.defn(name="schedule_callback")
    @business_errors_are_final
    async def schedule_callback(self, req: ScheduleCallback) -> str:
        """Book a callback; returns its ID."""
        return await self._cc.schedule_callback(
            req.customer_id, req.reason, req.priority, req.reference, req.idempotency_key
        )
