"""Activities for interactions and follow-ups: the context store, tickets, contact windows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from fiflow.activities.errors import business_errors_are_final
from fiflow.domain.alerts import AlertInput, AlertRequest
from fiflow.domain.contact_window import next_contact_time
from fiflow.domain.follow_ups import CustomerInTouch, Ticket
from fiflow.domain.interactions import InteractionChannel, PriorInteraction
from fiflow.domain.keys import alert_id_for, follow_up_workflow_id
from fiflow.domain.triggers import FollowUpRules, Hours, in_hours
from fiflow.integrations.core_banking import CoreBankingClient
from fiflow.integrations.crm import CrmClient
from fiflow.integrations.interactions_store import InteractionRecord, InteractionStore


class PriorQuery(BaseModel):
    """A customer's interactions since a time, except one."""

    customer_id: str
    since: datetime
    exclude: str | None = None


class RecordInteraction(BaseModel):
    """The interaction's summary for the context store."""

    interaction_id: str
    customer_id: str | None
    channel: InteractionChannel
    status: str
    reason: str | None = None
    outcome: str | None = None
    started_at: datetime
    ended_at: datetime | None = None
    summary: dict[str, Any] | None = None


class RecordFollowUp(BaseModel):
    """A follow-up's state for the context store."""

    follow_up_id: str
    customer_id: str
    ticket_id: str
    status: Literal["waiting", "done"]
    outcome: str | None = None


class CustomerInTouchNow(BaseModel):
    """A customer started a new interaction."""

    customer_id: str
    interaction_id: str


class CreateTicket(BaseModel):
    """A support ticket to open."""

    customer_id: str
    subject: str
    category: str
    description: str
    idempotency_key: str


class GetTicket(BaseModel):
    """A ticket to read."""

    ticket_id: str


class NextContact(BaseModel):
    """When may a follow-up contact this customer."""

    now: datetime
    customer_zone: str
    rules: FollowUpRules
    attempts: list[datetime]


class InHours(BaseModel):
    """Is this moment inside these hours of the customer's local time."""

    hours: Hours | None
    customer_zone: str | None
    at: datetime


class PrepareFraudAlert(BaseModel):
    """An alert on the customer's latest card transaction, asked for by an interaction."""

    source_event_id: str
    customer_id: str
    alert_type: str
    card_last4: str | None = None


class InteractionActivities:
    """Context-store reads and writes."""

    def __init__(self, store: InteractionStore):
        self._store = store

    @activity.defn(name="prior_interactions")
    async def prior_interactions(self, req: PriorQuery) -> list[PriorInteraction]:
        """The customer's earlier interactions (for repeat-caller triggers)."""
        rows = await asyncio.to_thread(
            self._store.customer_interactions,
            req.customer_id,
            since=req.since,
            exclude=req.exclude,
        )
        return [
            PriorInteraction(
                interaction_id=r.interaction_id, reason=r.reason, started_at=r.started_at
            )
            for r in rows
        ]

    @activity.defn(name="record_interaction")
    async def record_interaction(self, req: RecordInteraction) -> None:
        """Store (or update) the interaction's summary."""
        record = InteractionRecord(
            interaction_id=req.interaction_id,
            customer_id=req.customer_id,
            channel=req.channel.value,
            status=req.status,
            reason=req.reason,
            outcome=req.outcome,
            started_at=req.started_at,
            ended_at=req.ended_at,
            updated_at=activity.info().current_attempt_scheduled_time,
            summary=req.summary,
        )
        await asyncio.to_thread(self._store.upsert_interaction, record)


class FollowUpRegistry:
    """Which follow-ups wait on which customer, so a new interaction can stop them at once."""

    def __init__(self, client: Client, store: InteractionStore):
        self._client = client
        self._store = store

    @activity.defn(name="record_follow_up")
    async def record_follow_up(self, req: RecordFollowUp) -> None:
        """Note the follow-up as waiting or done."""
        await asyncio.to_thread(
            self._store.record_follow_up,
            req.follow_up_id,
            customer_id=req.customer_id,
            ticket_id=req.ticket_id,
            status=req.status,
            outcome=req.outcome,
            at=datetime.now(UTC),
        )

    @activity.defn(name="stop_waiting_follow_ups")
    async def stop_waiting_follow_ups(self, req: CustomerInTouchNow) -> list[str]:
        """Tell each of the customer's waiting follow-ups that the customer is in touch."""
        told = []
        for follow_up_id in await asyncio.to_thread(
            self._store.waiting_follow_ups, req.customer_id
        ):
            handle = self._client.get_workflow_handle(follow_up_workflow_id(follow_up_id))
            try:
                await handle.signal(
                    "customer_in_touch", CustomerInTouch(interaction_id=req.interaction_id)
                )
            except RPCError as err:
                # Ended between the read and the signal: nothing left to stop.
                if err.status is not RPCStatusCode.NOT_FOUND:
                    raise
                continue
            told.append(follow_up_id)
        return told


class TicketActivities:
    """CRM support tickets."""

    def __init__(self, client: CrmClient):
        self._crm = client

    @activity.defn(name="create_ticket")
    @business_errors_are_final
    async def create_ticket(self, req: CreateTicket) -> Ticket:
        """Open a ticket (idempotent by key)."""
        return await self._crm.create_ticket(
            req.customer_id, req.subject, req.category, req.description, req.idempotency_key
        )

    @activity.defn(name="get_ticket")
    @business_errors_are_final
    async def get_ticket(self, req: GetTicket) -> Ticket:
        """Read a ticket."""
        return await self._crm.get_ticket(req.ticket_id)


class ContactWindowActivities:
    """Time-zone arithmetic, outside workflow code so a tzdata update never changes a replay."""

    @activity.defn(name="next_contact_time")
    async def next_contact_time(self, req: NextContact) -> datetime | None:
        """The earliest allowed contact time, or None."""
        return next_contact_time(req.now, req.customer_zone, req.rules, req.attempts)

    @activity.defn(name="in_hours")
    async def in_hours(self, req: InHours) -> bool:
        """Whether a trigger's hours hold at that moment (unknown zones count as UTC)."""
        return in_hours(req.hours, req.customer_zone, req.at)


class FraudAlertFromInteraction:
    """Builds the input of a fraud alert on the customer's latest transaction."""

    def __init__(self, core: CoreBankingClient, hash_key: str, fi_name: str):
        self._core = core
        self._hash_key = hash_key
        self._fi_name = fi_name

    @activity.defn(name="prepare_fraud_alert")
    @business_errors_are_final
    async def prepare(self, req: PrepareFraudAlert) -> AlertInput | None:
        """None when the customer has no recent card transaction."""
        txn = await self._core.latest_transaction(req.customer_id, req.card_last4)
        if txn is None:
            return None
        request = AlertRequest(
            source_event_id=req.source_event_id,
            customer_id=req.customer_id,
            alert_type=req.alert_type,
            transaction=txn,
        )
        return AlertInput(
            alert_id=alert_id_for(self._hash_key, req.source_event_id),
            request=request,
            received_at=activity.info().current_attempt_scheduled_time,
            fi_name=self._fi_name,
            source="interaction",
        )
