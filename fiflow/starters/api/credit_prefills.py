"""`/v1/credit-prefills`: applications fiflow prepared during an interaction, for the channel."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.credit_prefill import PrefillStatus
from fiflow.domain.keys import prefill_workflow_id
from fiflow.starters.api.auth import Identity, customer_scope, ensure_owner, require
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.openapi import KEYED, PARAMS, UPSTREAM, errors
from fiflow.starters.api.state import ApiState, api_state
from fiflow.starters.workflow_views import Lookup, workflow_view

router = APIRouter(
    prefix="/v1/credit-prefills", tags=["credit applications"], responses=errors(*KEYED)
)


class PrefillView(BaseModel):
    """A pre-fill: still preparing, or the values to put in front of the customer."""

    prefill_id: str = Field(description="The pre-fill.", examples=["pf-ia-1"])
    run_status: str = Field(
        description="The workflow run's status (RUNNING, COMPLETED, ...).", examples=["COMPLETED"]
    )
    status: PrefillStatus | None = Field(
        description="Preparing, or the values to show; null until the run first answers."
    )


@router.get(
    "/{prefill_id}",
    response_model=PrefillView,
    operation_id="credit_prefills_get",
    summary="Read a credit pre-fill",
    responses=errors(404, *PARAMS, *UPSTREAM),
)
async def get_prefill(
    prefill_id: str = Path(pattern=SAFE_ID),
    state: ApiState = Depends(api_state),
    identity: Identity = require("channel", "reviewer", "admin"),
) -> PrefillView:
    """The pre-filled application (no credit was pulled; applying needs consent).

    A channel sees it once it is ready: only then does it name its customer.
    """
    scope = customer_scope(identity)
    view = await workflow_view(
        await state.client(),
        prefill_workflow_id(prefill_id),
        "CreditPrefillWorkflow",
        PrefillStatus,
    )
    not_found = ApiError(404, "prefill_not_found", f"no credit pre-fill {prefill_id}")
    if view.lookup is Lookup.NOT_FOUND:
        raise not_found
    prefill = view.status.prefill if view.status else None
    ensure_owner(scope, prefill.customer_id if prefill else None, not_found)
    return PrefillView(prefill_id=prefill_id, run_status=view.run_status, status=view.status)
