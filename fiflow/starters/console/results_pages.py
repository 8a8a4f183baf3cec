"""Console pages for the results reports of alerts and follow-ups (beside the credit reports).

`/console/results/alerts` and `/console/results/follow-ups` list them with the API's filters;
`/console/results/<kind>/<id>` shows one. They read the store the API reads, for the same
roles (reviewer, admin), and render only what the report holds.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from fiflow.domain.results_reports import ALERT_OUTCOMES, FOLLOW_UP_OUTCOMES, WORD, ReportKind
from fiflow.integrations.reports import InvalidCursor
from fiflow.integrations.results_reports import ResultsPage
from fiflow.starters.console.routes import _current, _date, _render, _safe, _state

router = APIRouter(prefix="/console/results", include_in_schema=False)

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
    current = _current(request, "reviewer", "admin")
    if segment not in KINDS:
        return _render(request, "not_found.html", current, 404, what=f"report list {segment}")
    kind, title, outcomes = KINDS[segment]
    problem = None
    page: ResultsPage | None = None
    try:
        if outcome and outcome not in outcomes:
            raise ValueError(f"no outcome {outcome!r}")
        if type_ and not re.match(WORD, type_):
            raise ValueError("a type is a lower-case word")
        page = await asyncio.to_thread(
            _state(request).results_reports().list,
            kind,
            completed_from=_date(from_),
            completed_to=_date(to, end=True),
            outcome=outcome or None,
            report_type=type_ or None,
            limit=50,
            cursor=cursor,
        )
    except (ValueError, InvalidCursor) as exc:
        problem = f"Cannot list with that filter ({exc})."
    filters = {"outcome": outcome, "type": type_, "from": from_, "to": to}
    return _render(
        request,
        "results_reports.html",
        current,
        segment=segment,
        kind=kind.value,
        title=title,
        page=page,
        problem=problem,
        filters=filters,
        query=urlencode({k: v for k, v in filters.items() if v}),
        outcomes=outcomes,
    )


@router.get("/{segment}/{subject_id}")
async def results_report(request: Request, segment: str, subject_id: str) -> HTMLResponse:
    """One alert's or follow-up's results report."""
    current = _current(request, "reviewer", "admin")
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
