"""Console pages for the results reports of alerts and follow-ups (beside the credit reports).

`/console/results/alerts` and `/console/results/follow-ups` list them with the API's filters;
`/console/results/<kind>/<id>` shows one. They read the store the API reads, for the same
roles (reviewer, admin), and render only what the report holds.
"""

from __future__ import annotations

import asyncio
import re

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from fiflow.domain.results_reports import ALERT_OUTCOMES, FOLLOW_UP_OUTCOMES, WORD, ReportKind
from fiflow.integrations.results_reports import ResultsPage
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.results_reports import results_page
from fiflow.starters.console.routes import _current, _date, _render, _safe, _search_page, _state

router = APIRouter(prefix="/console/results", include_in_schema=False)
# The roles the API's report endpoints require.
ROLES = ("reviewer", "admin")

# Per kind: its path segment, its title, the outcomes it may filter by.
KINDS = {
    "alerts": (ReportKind.ALERT, "Alert results", ALERT_OUTCOMES),
    "follow-ups": (ReportKind.FOLLOW_UP, "Follow-up results", FOLLOW_UP_OUTCOMES),
}


@router.get("/{segment}")
async def results_list(
    request: Request,
    segment: str,
    outcome: str = Query(default="", max_length=32),
    type_: str = Query(default="", alias="type", max_length=64),
    from_: str = Query(default="", alias="from", max_length=32),
    to: str = Query(default="", max_length=32),
    cursor: str | None = Query(default=None, max_length=512),
) -> HTMLResponse:
    """The results reports of one kind, filtered by outcome, type and completion date."""
    if segment not in KINDS:
        current = _current(request, *ROLES)
        return _render(request, "not_found.html", current, 404, what=f"report list {segment}")
    kind, title, outcomes = KINDS[segment]

    async def search() -> ResultsPage:
        if outcome and outcome not in outcomes:
            raise ValueError(f"no outcome {outcome!r}")
        if type_ and not re.match(WORD, type_):
            raise ValueError("a type is a lower-case word")
        # The API's own listing: the same range and cursor checks as GET /v1/reports/...
        return await results_page(
            _state(request),
            kind,
            _date(from_),
            _date(to, end=True),
            outcome or None,
            type_ or None,
            50,
            cursor,
        )

    return await _search_page(
        request,
        "results_reports.html",
        {"outcome": outcome, "type": type_, "from": from_, "to": to},
        search,
        (ValueError, ApiError),
        "list",
        roles=ROLES,
        segment=segment,
        kind=kind.value,
        title=title,
        outcomes=outcomes,
    )


@router.get("/{segment}/{subject_id}")
async def results_report(request: Request, segment: str, subject_id: str) -> HTMLResponse:
    """One alert's or follow-up's results report."""
    current = _current(request, *ROLES)
    _safe(subject_id)
    if segment not in KINDS:
        return _render(request, "not_found.html", current, 404, what=f"report list {segment}")
    kind, title, _ = KINDS[segment]
    stored = await asyncio.to_thread(_state(request).results_reports().get, kind, subject_id)
    if stored is None:
        return _render(request, "not_found.html", current, 404, what=f"report for {subject_id}")
    return _render(
        request,
        "results_report.html",
        current,
        segment=segment,
        title=title,
        report=stored.report,
        stored_at=stored.stored_at,
    )
