"""`/v1/interactions`: live events from IVR, chat, the app and the agent desktop."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.interactions import (
    MAX_EVENTS,
    EventType,
    InteractionEvent,
    InteractionEventRequest,
    InteractionInput,
    InteractionStatus,
    takes_event,
)
from fiflow.integrations.interactions_store import StoredEvent
from fiflow.starters.api.auth import Identity, customer_scope, ensure_owner, require
from fiflow.starters.api.crm_reads import crm_read, unknown_customer
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.openapi import JSON_BODY, KEYED, PARAMS, UPSTREAM, errors
from fiflow.starters.api.state import ApiState, api_state
from fiflow.starters.interactions_client import deliver_event, interaction_view
from fiflow.starters.workflow_views import Lookup

log = logging.getLogger("fiflow.api")
router = APIRouter(prefix="/v1/interactions", tags=["interactions"], responses=errors(*KEYED))
INTERACTION_ID = Path(pattern=SAFE_ID, max_length=64)
# Interaction systems' clocks drift; an event from further ahead than this is a bug upstream.
CLOCK_SKEW = timedelta(minutes=5)


class EventAccepted(BaseModel):
    """What happened to a posted event.

    `accepted`: delivered to the running interaction. `duplicate`: this event_id was
    already taken (nothing happens twice). `late`: the interaction had already closed; the
    event is stored with the interaction's record but fires no triggers. `rejected`: not
    taken, `reason` says why (an interaction past its event cap takes only its end).
    """

    interaction_id: str = Field(description="The interaction.", examples=["ia-call-981"])
    event_id: str = Field(description="The event.", examples=["ev-1"])
    status: str = Field(
        description="`accepted`, `duplicate`, `late` or `rejected`.", examples=["accepted"]
    )
    reason: str | None = Field(
        default=None, description="Why a `rejected` event was not taken.", examples=[None]
    )


class InteractionView(BaseModel):
    """Events, triggers fired and pending next-best actions; late events listed apart."""

    interaction_id: str = Field(description="The interaction.", examples=["ia-call-981"])
    run_status: str = Field(
        description="The workflow run's status (RUNNING, COMPLETED, ..., or unknown).",
        examples=["RUNNING"],
    )
    status: InteractionStatus | None = Field(
        description="Events, triggers fired, next-best actions; null without a run."
    )
    late_events: list[StoredEvent] = Field(
        description="Events that arrived after the interaction closed."
    )


@router.post(
    "/{interaction_id}/events",
    status_code=202,
    response_model=EventAccepted,
    dependencies=[require("channel")],
    operation_id="interactions_events_create",
    summary="Post an interaction event",
    responses=errors(*JSON_BODY, *UPSTREAM),
)
async def post_event(
    body: InteractionEventRequest,
    interaction_id: str = INTERACTION_ID,
    state: ApiState = Depends(api_state),
) -> EventAccepted:
    """Take one event; the events of an interaction reach its workflow in the order taken."""
    if body.type not in {e.value for e in EventType}:
        known = ", ".join(e.value for e in EventType)
        raise ApiError(422, "unknown_event_type", f"type {body.type!r} is not one of: {known}")
    now = datetime.now(UTC)
    if body.occurred_at > now + CLOCK_SKEW:
        raise ApiError(
            422,
            "occurred_at_in_future",
            "occurred_at is more than 5 minutes ahead of fiflow's clock",
        )
    taken = await asyncio.to_thread(state.interactions.event_count, interaction_id)
    if not takes_event(taken, EventType(body.type)):
        return EventAccepted(
            interaction_id=interaction_id,
            event_id=body.event_id,
            status="rejected",
            reason=f"the interaction has taken {MAX_EVENTS} events, the most it takes; "
            "only interaction_ended still counts",
        )
    customer_id = await _customer_of(state, body)
    event = InteractionEvent(
        event_id=body.event_id,
        channel=body.channel,
        type=EventType(body.type),
        attributes=body.attributes,
        occurred_at=body.occurred_at,
        accepted_at=now,
    )
    inp = InteractionInput(
        interaction_id=interaction_id,
        customer_id=customer_id,
        channel=body.channel,
        fi_name=state.settings.fi_name,
    )
    delivered = await deliver_event(await state.client(), state.settings, inp, event)
    stored = StoredEvent(
        event_id=body.event_id,
        interaction_id=interaction_id,
        customer_id=customer_id,
        channel=body.channel.value,
        type=body.type,
        occurred_at=body.occurred_at,
        accepted_at=now,
        late=not delivered,
        attributes=dict(body.attributes),
    )
    new = await asyncio.to_thread(state.interactions.record_event, stored)
    status = "duplicate" if not new else ("accepted" if delivered else "late")
    return EventAccepted(interaction_id=interaction_id, event_id=body.event_id, status=status)


@router.get(
    "/{interaction_id}",
    response_model=InteractionView,
    operation_id="interactions_get",
    summary="Read an interaction",
    responses=errors(404, *PARAMS, *UPSTREAM),
)
async def get_interaction(
    interaction_id: str = INTERACTION_ID,
    state: ApiState = Depends(api_state),
    identity: Identity = require("channel", "reviewer", "admin"),
) -> InteractionView:
    """The interaction: events, triggers fired, next-best actions (and late events)."""
    scope = customer_scope(identity)
    view = await interaction_view(await state.client(), interaction_id)
    stored = await asyncio.to_thread(state.interactions.events, interaction_id)
    not_found = ApiError(404, "interaction_not_found", f"no interaction {interaction_id}")
    if view.lookup is Lookup.NOT_FOUND and not stored:
        raise not_found
    # An unknown caller's interaction has no customer: no session can read it.
    owner = (
        view.status.customer_id
        if view.status
        else next((e.customer_id for e in stored if e.customer_id), None)
    )
    ensure_owner(scope, owner, not_found)
    return InteractionView(
        interaction_id=interaction_id,
        run_status=view.run_status or "unknown",
        status=view.status,
        late_events=[e for e in stored if e.late],
    )


async def _customer_of(state: ApiState, body: InteractionEventRequest) -> str | None:
    """The customer the event is about; a caller's number is resolved and then dropped."""
    assert state.crm is not None
    if body.customer_id is not None:
        # A known ID is taken even when CRM is down: the workflow reads the profile itself.
        await crm_read(
            state.crm.get_customer(body.customer_id),
            missing=unknown_customer(body.customer_id),
            strict=False,
            what="customer check",
        )
        return body.customer_id
    assert body.caller is not None
    # A number needs CRM to mean anything: without it the sender must retry.
    found = await crm_read(
        state.crm.find_by_phone(body.caller),
        missing=ApiError(422, "unknown_customer", "the caller is not known to the CRM"),
        strict=True,
        what="caller lookup",
    )
    # An unknown caller is still an interaction: triggers that need a customer skip.
    return found.customer_id if found else None
