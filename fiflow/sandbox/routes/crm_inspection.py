"""The CRM's tickets and notes as tests see them, and an agent's hand (never recorded)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from fiflow.sandbox.crm_tickets import TicketStatus
from fiflow.sandbox.routes.crm_tickets import find_ticket
from fiflow.sandbox.state import SandboxState, get_state

router = APIRouter(prefix="/__sandbox/crm", tags=["sandbox"])


@router.get("/tickets")
async def tickets(
    customer_id: str | None = None,
    status: TicketStatus | None = None,
    state: SandboxState = Depends(get_state),
) -> list[dict[str, Any]]:
    """Tickets in opening order, with description, idempotency key and status history."""
    return [t.full_view() for t in state.tickets.for_customer(customer_id, status)]


@router.post("/tickets/{ticket_id}/resolve")
async def resolve_ticket(
    ticket_id: str, state: SandboxState = Depends(get_state)
) -> dict[str, Any]:
    """Resolve a ticket as an agent would in the CRM's UI: no call, no fault, no replay."""
    ticket = find_ticket(state, ticket_id)
    return state.tickets.set_status(ticket, "resolved", None, "agent").full_view()


@router.get("/notes")
async def notes(
    customer_id: str | None = None, state: SandboxState = Depends(get_state)
) -> list[dict[str, Any]]:
    """Notes kept on customers' records, in the order they were added."""
    return state.notes.for_customer(customer_id)
