"""Credit bureau: soft and hard pulls of a customer's credit report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from fiflow.sandbox.errors import customer_not_found
from fiflow.sandbox.models import BureauPullRequest
from fiflow.sandbox.pipeline import handle_call, idempotency_key
from fiflow.sandbox.state import SandboxState, get_state

router = APIRouter(prefix="/bureau", tags=["bureau"])


@router.post("/pulls", status_code=201)
async def pull_report(
    pull: BureauPullRequest, request: Request, state: SandboxState = Depends(get_state)
) -> Response:
    """Pull a customer's report; a hard pull adds an inquiry that later pulls report."""
    key = idempotency_key(request)

    def action() -> tuple[int, Any]:
        profile = state.profiles.get(pull.customer_id)
        if profile is None:
            raise customer_not_found(pull.customer_id)
        return 201, state.bureau.pull(profile, pull.kind, pull.reference, key)

    return await handle_call(state, request, "bureau", action, body=await request.json())
