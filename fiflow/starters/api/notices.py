"""`GET /v1/notices/{notice_id}`: one informational alert (a notice), as its workflow has it.

Notices are listed beside fraud alerts (`GET /v1/alerts?kind=notice`); this reads one of them,
the way `GET /v1/alerts/{alert_id}` reads a fraud alert: the `status` query while it runs,
its result once it ended.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.keys import notice_workflow_id
from fiflow.domain.notices import NoticeResult
from fiflow.integrations.alert_starts import NOTICE_WORKFLOW
from fiflow.integrations.settings import ROLES
from fiflow.starters.api.auth import Identity, customer_scope, ensure_owner, require
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.openapi import KEYED, PARAMS, UPSTREAM, errors
from fiflow.starters.api.state import ApiState, api_state
from fiflow.starters.workflow_views import Lookup, workflow_view

router = APIRouter(prefix="/v1/notices", tags=["alerts"], responses=errors(*KEYED))


class NoticeView(BaseModel):
    """A notice: where it is, the channel it went out on, what it tried and when."""

    notice_id: str = Field(description="The notice's ID.", examples=["nt-4be1d07c"])
    run_status: str = Field(
        description="The workflow run's status (RUNNING, COMPLETED, ...).", examples=["COMPLETED"]
    )
    status: NoticeResult | None = Field(
        description="The notice's status, channel, attempts and timings; null until the run "
        "first answers (and for a run that failed or was terminated)."
    )


@router.get(
    "/{notice_id}",
    response_model=NoticeView,
    operation_id="notices_get",
    summary="Read a notice",
    responses=errors(404, *PARAMS, *UPSTREAM),
)
async def get_notice(
    notice_id: str = Path(pattern=SAFE_ID),
    state: ApiState = Depends(api_state),
    identity: Identity = require(*ROLES),
) -> NoticeView:
    """The notice's status, channel, attempts and timings (a channel: its customer's only)."""
    view = await workflow_view(
        await state.client(), notice_workflow_id(notice_id), NOTICE_WORKFLOW, NoticeResult
    )
    not_found = ApiError(404, "notice_not_found", f"no notice {notice_id}")
    if view.lookup is Lookup.NOT_FOUND:
        raise not_found
    ensure_owner(
        customer_scope(identity), view.status.customer_id if view.status else None, not_found
    )
    return NoticeView(notice_id=notice_id, run_status=view.run_status, status=view.status)
