"""The results reports of finished fraud alerts and follow-ups: one by its ID, or a list.

`GET /v1/alerts/{alert_id}/report` and `GET /v1/follow-ups/{follow_up_id}/report` read one;
`GET /v1/reports/alerts` and `GET /v1/reports/follow-ups` list them with filters, like the
credit reports. Staff only (reviewer, admin).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TypeVar

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

R = TypeVar("R", AlertResultsReport, FollowUpResultsReport)
KIND_OF: dict[type, ReportKind] = {
    AlertResultsReport: ReportKind.ALERT,
    FollowUpResultsReport: ReportKind.FOLLOW_UP,
}

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
    return await _one(
        state, AlertResultsReport, alert_id, f"alert {alert_id} (not decided, or unknown)"
    )


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
    return await _one(
        state,
        FollowUpResultsReport,
        follow_up_id,
        f"follow-up {follow_up_id} (not finished, or unknown)",
    )


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
    page = await results_page(
        state, ReportKind.ALERT, from_, to, outcome, alert_type, limit, cursor
    )
    return AlertReportList(items=_of(page, AlertResultsReport), next_cursor=page.next_cursor)


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
    page = await results_page(
        state, ReportKind.FOLLOW_UP, from_, to, outcome, reason, limit, cursor
    )
    return FollowUpReportList(items=_of(page, FollowUpResultsReport), next_cursor=page.next_cursor)


async def _one(state: ApiState, report_class: type[R], subject_id: str, what: str) -> R:
    """The stored report of one alert or follow-up, or a 404 naming `what`."""
    stored = await asyncio.to_thread(state.results_reports().get, KIND_OF[report_class], subject_id)
    if stored is None or not isinstance(stored.report, report_class):
        raise ApiError(404, "report_not_found", f"no report for {what}")
    return stored.report


def _of(page: ResultsPage, report_class: type[R]) -> list[R]:
    return [s.report for s in page.items if isinstance(s.report, report_class)]


async def results_page(
    state: ApiState,
    kind: ReportKind,
    from_: datetime | None,
    to: datetime | None,
    outcome: str | None,
    report_type: str | None,
    limit: int,
    cursor: str | None,
) -> ResultsPage:
    """One page of results reports, as the list endpoints and the console pages read them.

    ApiError (4xx) for a range that ends before it starts or a cursor that is not ours.
    """
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
