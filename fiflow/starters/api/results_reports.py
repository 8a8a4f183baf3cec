"""The results reports of finished fraud alerts and follow-ups: one by its ID, or a list.

`GET /v1/alerts/{alert_id}/report` and `GET /v1/follow-ups/{follow_up_id}/report` read one;
`GET /v1/reports/alerts` and `GET /v1/reports/follow-ups` list them with filters, like the
credit reports. Staff only (reviewer, admin).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel, Field

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.results_reports import (
    WORD,
    AlertOutcomeWord,
    AlertResultsReport,
    FollowUpOutcomeWord,
    FollowUpResultsReport,
    ReportKind,
)
from fiflow.integrations.reports import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor
from fiflow.integrations.results_reports import ResultsPage
from fiflow.starters.api.auth import require
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.openapi import KEYED, PARAMS, errors
from fiflow.starters.api.state import ApiState, api_state

router = APIRouter(
    tags=["reports"], dependencies=[require("reviewer", "admin")], responses=errors(*KEYED)
)

FROM = Query(default=None, alias="from", description="completed at or after (ISO 8601, offset)")
TO = Query(default=None, description="completed before (ISO 8601, with offset)")
LIMIT = Query(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page.")
CURSOR = Query(default=None, max_length=512, description="`next_cursor` of the page before.")


class AlertReportList(BaseModel):
    """One page of alert reports, oldest completion first."""

    items: list[AlertResultsReport] = Field(description="The reports of this page.")
    next_cursor: str | None = Field(description="Pass as `cursor`; null on the last page.")


class FollowUpReportList(BaseModel):
    """One page of follow-up reports, oldest completion first."""

    items: list[FollowUpResultsReport] = Field(description="The reports of this page.")
    next_cursor: str | None = Field(description="Pass as `cursor`; null on the last page.")


@router.get(
    "/v1/alerts/{alert_id}/report",
    response_model=AlertResultsReport,
    operation_id="reports_alert_get",
    summary="Read one alert's results report",
    responses=errors(404, *PARAMS),
)
async def get_alert_report(
    alert_id: str = Path(pattern=SAFE_ID), state: ApiState = Depends(api_state)
) -> AlertResultsReport:
    """How one finished alert ended (stored when it was decided)."""
    stored = await asyncio.to_thread(state.results_reports().get, ReportKind.ALERT, alert_id)
    if stored is None or not isinstance(stored.report, AlertResultsReport):
        raise ApiError(
            404, "report_not_found", f"no report for alert {alert_id} (not decided, or unknown)"
        )
    return stored.report


@router.get(
    "/v1/follow-ups/{follow_up_id}/report",
    response_model=FollowUpResultsReport,
    operation_id="reports_follow_up_get",
    summary="Read one follow-up's results report",
    responses=errors(404, *PARAMS),
)
async def get_follow_up_report(
    follow_up_id: str = Path(pattern=SAFE_ID), state: ApiState = Depends(api_state)
) -> FollowUpResultsReport:
    """How one finished follow-up ended."""
    stored = await asyncio.to_thread(
        state.results_reports().get, ReportKind.FOLLOW_UP, follow_up_id
    )
    if stored is None or not isinstance(stored.report, FollowUpResultsReport):
        raise ApiError(
            404,
            "report_not_found",
            f"no report for follow-up {follow_up_id} (not finished, or unknown)",
        )
    return stored.report


@router.get(
    "/v1/reports/alerts",
    response_model=AlertReportList,
    operation_id="reports_alerts_list",
    summary="List alert results reports",
    responses=errors(400, *PARAMS),
)
async def list_alert_reports(
    from_: AwareDatetime | None = FROM,
    to: AwareDatetime | None = TO,
    outcome: AlertOutcomeWord | None = Query(default=None, description="How the alerts ended."),
    alert_type: str | None = Query(default=None, pattern=WORD, description="One alert type."),
    limit: int = LIMIT,
    cursor: str | None = CURSOR,
    state: ApiState = Depends(api_state),
) -> AlertReportList:
    """Reports of decided alerts, filtered and paged."""
    page = await _page(state, ReportKind.ALERT, from_, to, outcome, alert_type, limit, cursor)
    items = [s.report for s in page.items if isinstance(s.report, AlertResultsReport)]
    return AlertReportList(items=items, next_cursor=page.next_cursor)


@router.get(
    "/v1/reports/follow-ups",
    response_model=FollowUpReportList,
    operation_id="reports_follow_ups_list",
    summary="List follow-up results reports",
    responses=errors(400, *PARAMS),
)
async def list_follow_up_reports(
    from_: AwareDatetime | None = FROM,
    to: AwareDatetime | None = TO,
    outcome: FollowUpOutcomeWord | None = Query(
        default=None, description="How the follow-ups ended."
    ),
    reason: str | None = Query(default=None, pattern=WORD, description="One reason."),
    limit: int = LIMIT,
    cursor: str | None = CURSOR,
    state: ApiState = Depends(api_state),
) -> FollowUpReportList:
    """Reports of finished follow-ups, filtered and paged."""
    page = await _page(state, ReportKind.FOLLOW_UP, from_, to, outcome, reason, limit, cursor)
    items = [s.report for s in page.items if isinstance(s.report, FollowUpResultsReport)]
    return FollowUpReportList(items=items, next_cursor=page.next_cursor)


async def _page(
    state: ApiState,
    kind: ReportKind,
    from_: AwareDatetime | None,
    to: AwareDatetime | None,
    outcome: str | None,
    report_type: str | None,
    limit: int,
    cursor: str | None,
) -> ResultsPage:
    if from_ is not None and to is not None and from_ >= to:
        raise ApiError(422, "invalid_range", "`from` must be before `to`")
    try:
        return await asyncio.to_thread(
            state.results_reports().list,
            kind,
            completed_from=from_,
            completed_to=to,
            outcome=outcome,
            report_type=report_type,
            limit=limit,
            cursor=cursor,
        )
    except InvalidCursor as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from None
