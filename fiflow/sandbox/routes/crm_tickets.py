"""CRM: customers' support tickets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from fiflow.sandbox.crm_tickets import Ticket, TicketStatus
from fiflow.sandbox.errors import customer_not_found, ticket_not_found
from fiflow.sandbox.models import TicketRequest, TicketStatusRequest
from fiflow.sandbox.pipeline import handle_call, idempotency_key
from fiflow.sandbox.state import SandboxState, get_state

router = APIRouter(prefix="/crm", tags=["crm"])


def find_ticket(state: SandboxState, ticket_id: str) -> Ticket:
    """The ticket with that ID, or the CRM's 404."""
    ticket = state.tickets.get(ticket_id)
    if ticket is None:
        raise ticket_not_found(ticket_id)
    return ticket


@router.post("/customers/{customer_id}/tickets", status_code=201)
async def open_ticket(
    customer_id: str,
    command: TicketRequest,
    request: Request,
    state: SandboxState = Depends(get_state),
) -> Response:
    """Open a support ticket for the customer."""
    key = idempotency_key(request)

    def action() -> tuple[int, Any]:
        if state.directory.customer(customer_id) is None:
            raise customer_not_found(customer_id)
        ticket = state.tickets.open(
            customer_id,
            command.subject,
            command.category,
            command.description,
            command.priority,
            key,
        )
        return 201, ticket.view()

    return await handle_call(state, request, "crm", action, body=await request.json())


@router.get("/customers/{customer_id}/tickets")
async def customer_tickets(
    customer_id: str,
    request: Request,
    status: TicketStatus | None = Query(default=None, description="only tickets in this status"),
    state: SandboxState = Depends(get_state),
) -> Response:
    """The customer's tickets in the order they were opened."""

    def action() -> tuple[int, Any]:
        if state.directory.customer(customer_id) is None:
            raise customer_not_found(customer_id)
        return 200, [t.view() for t in state.tickets.for_customer(customer_id, status)]

    return await handle_call(state, request, "crm", action, write=False)


@router.get("/tickets/{ticket_id}")
async def get_ticket(
    ticket_id: str, request: Request, state: SandboxState = Depends(get_state)
) -> Response:
    """One ticket."""

    def action() -> tuple[int, Any]:
        return 200, find_ticket(state, ticket_id).view()

    return await handle_call(state, request, "crm", action, write=False)


@router.post("/tickets/{ticket_id}/status")
async def set_ticket_status(
    ticket_id: str,
    command: TicketStatusRequest,
    request: Request,
    state: SandboxState = Depends(get_state),
) -> Response:
    """Move a ticket to a status (asking for the one it has succeeds and changes nothing)."""

    def action() -> tuple[int, Any]:
        ticket = find_ticket(state, ticket_id)
        return 200, state.tickets.set_status(ticket, command.status, command.note, "api").view()

    return await handle_call(state, request, "crm", action, body=await request.json())
