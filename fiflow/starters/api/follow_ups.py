"""`/v1/follow-ups`: follow up on an unresolved ticket; resolve or move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.follow_ups import (
    FollowUpInput,
    FollowUpRequest,
    FollowUpStatus,
    Reschedule,
    Resolved,
    Ticket,
)
from fiflow.domain.keys import follow_up_workflow_id
from fiflow.starters.api.auth import Identity, customer_scope, ensure_owner, require
from fiflow.starters.api.crm_reads import crm_read
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.openapi import JSON_BODY, KEYED, PARAMS, UPSTREAM, errors
from fiflow.starters.api.state import ApiState, api_state
from fiflow.starters.interactions_client import follow_up_view, start_follow_up
from fiflow.starters.workflow_views import Lookup
from fiflow.workflows.follow_up import FollowUpWorkflow

router = APIRouter(prefix="/v1/follow-ups", tags=["follow-ups"], responses=errors(*KEYED))
FOLLOW_UP_ID = Path(pattern=SAFE_ID)
MAX_AHEAD = timedelta(days=90)


class FollowUpAccepted(BaseModel):
    """The follow-up exists (new, or the same follow_up_id again)."""

    follow_up_id: str = Field(description="The follow-up.", examples=["fu-tkt-77"])
    status_url: str = Field(
        description="Where to read its state.", examples=["/v1/follow-ups/fu-tkt-77"]
    )


class FollowUpView(BaseModel):
    """A follow-up: when it checks next, its attempts, how it ended."""

    follow_up_id: str = Field(description="The follow-up.", examples=["fu-tkt-77"])
    run_status: str = Field(
        description="The workflow run's status (RUNNING, COMPLETED, ...).", examples=["RUNNING"]
    )
    status: FollowUpStatus | None = Field(
        description="Next check, attempts, outcome; null until the run first answers."
    )


@router.post(
    "",
    status_code=202,
    response_model=FollowUpAccepted,
    dependencies=[require("channel", "system")],
    operation_id="follow_ups_create",
    summary="Follow up on a CRM ticket",
    responses=errors(*JSON_BODY, *UPSTREAM),
)
async def post_follow_up(
    req: FollowUpRequest, state: ApiState = Depends(api_state)
) -> FollowUpAccepted:
    """Follow up on a CRM ticket at a time."""
    now = datetime.now(UTC)
    if req.follow_up_at > now + MAX_AHEAD:
        raise ApiError(422, "follow_up_too_far", "follow_up_at is more than 90 days ahead")
    ticket = await _ticket(state, req.ticket_id)
    if ticket.customer_id != req.customer_id:
        raise ApiError(
            422, "ticket_customer_mismatch", f"ticket {req.ticket_id} belongs to another customer"
        )
    inp = FollowUpInput(
        follow_up_id=req.follow_up_id,
        customer_id=req.customer_id,
        ticket_id=req.ticket_id,
        reason=req.reason,
        subject=ticket.subject,
        follow_up_at=max(req.follow_up_at, now),
        created_at=now,
    )
    await start_follow_up(await state.client(), state.settings, inp)
    return FollowUpAccepted(
        follow_up_id=req.follow_up_id, status_url=f"/v1/follow-ups/{req.follow_up_id}"
    )


@router.get(
    "/{follow_up_id}",
    response_model=FollowUpView,
    operation_id="follow_ups_get",
    summary="Read a follow-up",
    responses=errors(404, *PARAMS, *UPSTREAM),
)
async def get_follow_up(
    follow_up_id: str = FOLLOW_UP_ID,
    state: ApiState = Depends(api_state),
    identity: Identity = require("channel", "system", "reviewer", "admin"),
) -> FollowUpView:
    """Where the follow-up is."""
    return await _view(state, follow_up_id, customer_scope(identity))


async def _view(state: ApiState, follow_up_id: str, scope: str | None) -> FollowUpView:
    view = await follow_up_view(await state.client(), follow_up_id)
    not_found = ApiError(404, "follow_up_not_found", f"no follow-up {follow_up_id}")
    if view.lookup is Lookup.NOT_FOUND:
        raise not_found
    ensure_owner(scope, view.status.customer_id if view.status else None, not_found)
    return FollowUpView(follow_up_id=follow_up_id, run_status=view.run_status, status=view.status)


@router.post(
    "/{follow_up_id}/resolved",
    response_model=FollowUpView,
    operation_id="follow_ups_resolved",
    summary="Mark the ticket resolved",
    responses=errors(*JSON_BODY, 404, 409, *UPSTREAM),
)
async def post_resolved(
    body: Resolved,
    follow_up_id: str = FOLLOW_UP_ID,
    state: ApiState = Depends(api_state),
    identity: Identity = require("channel", "system"),
) -> FollowUpView:
    """The request was resolved elsewhere: stop following up."""
    scope = customer_scope(identity)
    await _view(state, follow_up_id, scope)
    await _running(state, follow_up_id)
    handle = (await state.client()).get_workflow_handle(follow_up_workflow_id(follow_up_id))
    await handle.signal(FollowUpWorkflow.resolved, body)
    return await _view(state, follow_up_id, scope)


@router.post(
    "/{follow_up_id}/reschedule",
    response_model=FollowUpView,
    operation_id="follow_ups_reschedule",
    summary="Move the follow-up",
    responses=errors(*JSON_BODY, 404, 409, *UPSTREAM),
)
async def post_reschedule(
    body: Reschedule,
    follow_up_id: str = FOLLOW_UP_ID,
    state: ApiState = Depends(api_state),
    identity: Identity = require("channel", "system"),
) -> FollowUpView:
    """Move the follow-up ("call me tomorrow at 10")."""
    now = datetime.now(UTC)
    if not now <= body.follow_up_at <= now + MAX_AHEAD:
        raise ApiError(
            422,
            "invalid_follow_up_at",
            "follow_up_at must be in the future and at most 90 days ahead",
        )
    scope = customer_scope(identity)
    await _view(state, follow_up_id, scope)
    await _running(state, follow_up_id)
    handle = (await state.client()).get_workflow_handle(follow_up_workflow_id(follow_up_id))
    await handle.signal(FollowUpWorkflow.reschedule, body)
    return await _view(state, follow_up_id, scope)


async def _running(state: ApiState, follow_up_id: str) -> None:
    view = await follow_up_view(await state.client(), follow_up_id)
    if view.lookup is Lookup.NOT_FOUND:
        raise ApiError(404, "follow_up_not_found", f"no follow-up {follow_up_id}")
    if view.lookup is Lookup.FINISHED:
        outcome = view.status.outcome.value if view.status and view.status.outcome else "done"
        raise ApiError(
            409, "follow_up_finished", f"follow-up {follow_up_id} already ended ({outcome})"
        )


async def _ticket(state: ApiState, ticket_id: str) -> Ticket:
    assert state.crm is not None
    ticket = await crm_read(
        state.crm.get_ticket(ticket_id),
        missing=ApiError(422, "unknown_ticket", f"ticket {ticket_id} is not in the CRM"),
        strict=True,
        what="ticket lookup",
    )
    assert ticket is not None  # strict: trouble raised
    return ticket
