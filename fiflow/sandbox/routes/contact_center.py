"""Contact center: callbacks scheduled for an agent."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from fiflow.sandbox.errors import customer_not_found
from fiflow.sandbox.ids import new_id
from fiflow.sandbox.models import CallbackRequest
from fiflow.sandbox.pipeline import handle_call
from fiflow.sandbox.state import SandboxState, get_state

router = APIRouter(prefix="/contact-center", tags=["contact_center"])


@router.post("/callbacks", status_code=201)
async def schedule_callback(
    callback: CallbackRequest, request: Request, state: SandboxState = Depends(get_state)
) -> Response:
    """Schedule an agent callback to a customer."""

    def action() -> tuple[int, Any]:
        if state.directory.customer(callback.customer_id) is None:
            raise customer_not_found(callback.customer_id)
        return 201, {"callback_id": new_id("cb"), "status": "scheduled"}

    return await handle_call(state, request, "contact_center", action, body=await request.json())
