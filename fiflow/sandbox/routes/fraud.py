"""Fraud system: cases filed with the outcome of an alert."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from fiflow.sandbox.errors import customer_not_found
from fiflow.sandbox.ids import new_id
from fiflow.sandbox.models import FraudCaseRequest
from fiflow.sandbox.pipeline import handle_call
from fiflow.sandbox.state import SandboxState, get_state

router = APIRouter(prefix="/fraud", tags=["fraud"])


@router.post("/cases", status_code=201)
async def create_case(
    case: FraudCaseRequest, request: Request, state: SandboxState = Depends(get_state)
) -> Response:
    """File a fraud case for a customer."""

    def action() -> tuple[int, Any]:
        if state.directory.customer(case.customer_id) is None:
            raise customer_not_found(case.customer_id)
        return 201, {"case_id": new_id("case"), "case_ref": case.case_ref, "outcome": case.outcome}

    return await handle_call(state, request, "fraud", action, body=await request.json())
