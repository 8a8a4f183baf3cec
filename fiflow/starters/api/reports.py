"""`/v1/reports/...`: the stored results reports of finished credit applications."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel, Field

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.credit import Decision, Product
from fiflow.integrations.reports import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor
from fiflow.starters.api.auth import require
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.openapi import KEYED, PARAMS, errors
from fiflow.starters.api.state import ApiState, api_state

router = APIRouter(
    prefix="/v1/reports/credit-applications",
    tags=["reports"],
    dependencies=[require("reviewer", "admin")],
    responses=errors(*KEYED),
)


class ReportList(BaseModel):
    """One page of reports, oldest completion first; pass `next_cursor` for the next page."""

    items: list[dict[str, Any]] = Field(description="The reports of this page.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


@router.get(
    "",
    response_model=ReportList,
    operation_id="reports_list",
    summary="List credit reports",
    responses=errors(400, *PARAMS),
)
async def list_reports(
    from_: AwareDatetime | None = Query(
        default=None, alias="from", description="completed at or after (ISO 8601, with offset)"
    ),
    to: AwareDatetime | None = Query(default=None, description="completed before"),
    decision: Decision | None = None,
    product: Product | None = None,
    limit: int = Query(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(default=None, max_length=512),
    state: ApiState = Depends(api_state),
) -> ReportList:
    """Reports of finished applications, filtered and paged."""
    if from_ is not None and to is not None and from_ >= to:
        raise ApiError(422, "invalid_range", "`from` must be before `to`")
    try:
        page = await asyncio.to_thread(
            state.reports().list,
            completed_from=from_,
            completed_to=to,
            decision=decision.value if decision else None,
            product=product.value if product else None,
            limit=limit,
            cursor=cursor,
        )
    except InvalidCursor as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from None
    return ReportList(items=[r.report for r in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{application_id}",
    operation_id="reports_get",
    summary="Read one credit report",
    responses=errors(404, *PARAMS),
)
async def get_report(
    application_id: str = Path(pattern=SAFE_ID), state: ApiState = Depends(api_state)
) -> dict[str, Any]:
    """The report of one finished application."""
    stored = await asyncio.to_thread(state.reports().get, application_id)
    if stored is None:
        raise ApiError(
            404,
            "report_not_found",
            f"no report for application {application_id} (not finished, or unknown)",
        )
    return stored.report
