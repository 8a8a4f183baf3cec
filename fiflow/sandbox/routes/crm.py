"""CRM: customer profiles and notes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from fiflow.sandbox.errors import customer_not_found
from fiflow.sandbox.models import NoteRequest
from fiflow.sandbox.phones import from_query
from fiflow.sandbox.pipeline import handle_call, idempotency_key
from fiflow.sandbox.state import SandboxState, get_state

router = APIRouter(prefix="/crm", tags=["crm"])


@router.get("/customers/{customer_id}")
async def get_customer(
    customer_id: str, request: Request, state: SandboxState = Depends(get_state)
) -> Response:
    """One customer profile."""

    def action() -> tuple[int, Any]:
        customer = state.directory.customer(customer_id)
        if customer is None:
            raise customer_not_found(customer_id)
        return 200, customer.model_dump(mode="json")

    return await handle_call(state, request, "crm", action, write=False)


@router.get("/customers")
async def find_customers(
    request: Request,
    phone: str = Query(min_length=1, description="E.164 phone number"),
    state: SandboxState = Depends(get_state),
) -> Response:
    """Customers with that phone number: a list of zero or one."""

    def action() -> tuple[int, Any]:
        customer = state.directory.by_phone(from_query(phone))
        return 200, [customer.model_dump(mode="json")] if customer else []

    return await handle_call(state, request, "crm", action, write=False)


@router.post("/customers/{customer_id}/notes", status_code=201)
async def add_note(
    customer_id: str,
    note: NoteRequest,
    request: Request,
    state: SandboxState = Depends(get_state),
) -> Response:
    """Add a note to the customer's record."""
    key = idempotency_key(request)

    def action() -> tuple[int, Any]:
        if state.directory.customer(customer_id) is None:
            raise customer_not_found(customer_id)
        kept = state.notes.add(customer_id, note.text, note.category, key)
        return 201, {"note_id": kept["note_id"], "customer_id": customer_id}

    return await handle_call(state, request, "crm", action, body=await request.json())
