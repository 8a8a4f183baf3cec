"""`/v1/metrics/summary`: the business metrics per hour or day, as the aggregation stored them."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from fiflow.domain.metrics import PERIOD_LENGTH, PeriodKind, period_start
from fiflow.integrations.metrics_store import MetricsStore
from fiflow.starters.api.auth import require
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.openapi import KEYED, PARAMS, errors
from fiflow.starters.api.state import ApiState, api_state

router = APIRouter(
    prefix="/v1/metrics",
    tags=["metrics"],
    dependencies=[require("reviewer", "admin")],
    responses=errors(*KEYED),
)

# The longest range one request may ask for, per period kind.
MAX_RANGE = {PeriodKind.DAY: timedelta(days=93), PeriodKind.HOUR: timedelta(days=7)}
# Without `from`: this far back from `to`.
DEFAULT_RANGE = {PeriodKind.DAY: timedelta(days=7), PeriodKind.HOUR: timedelta(hours=24)}


class SummaryPoint(BaseModel):
    """One period's figures."""

    start: datetime = Field(description="The period's start (UTC).")
    count: int = Field(description="Events in the period.")
    sum: float | None = Field(description="Sum of the values (seconds); null for counts.")
    p50: float | None = Field(description="Median value (nearest rank); null for counts.")
    p95: float | None = Field(description="95th percentile (nearest rank); null for counts.")


class SummarySeries(BaseModel):
    """One metric with one label set, over the periods that had events."""

    metric: str = Field(description="The metric's name (README, Business metrics).")
    labels: dict[str, str] = Field(description="Its labels: fixed vocabularies, no personal data.")
    points: list[SummaryPoint] = Field(description="Periods with events, oldest first.")


class MetricsSummary(BaseModel):
    """The stored figures of periods starting in [from, to)."""

    model_config = ConfigDict(populate_by_name=True)

    period: PeriodKind = Field(description="`hour` or `day`.")
    from_: datetime = Field(alias="from", description="First period's start (UTC).")
    to: datetime = Field(description="End of the range (exclusive, UTC).")
    series: list[SummarySeries] = Field(description="One per metric and label set.")


def _instant(field: str, text: str, end: bool) -> datetime:
    """A date (its start; for `to` the end of that day) or an ISO instant with an offset."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise ApiError(
            422,
            "invalid_request",
            f"`{field}` must be a date (YYYY-MM-DD) or an ISO 8601 instant with an offset",
            details=[{"field": field, "problem": "not a date or an instant with an offset"}],
        )
    return at.astimezone(UTC)


@router.get(
    "/summary",
    response_model=MetricsSummary,
    operation_id="metrics_summary",
    summary="Business metrics per hour or day",
    responses=errors(*PARAMS),
)
async def summary(
    period: PeriodKind = Query(default=PeriodKind.DAY, description="`hour` or `day`"),
    from_: str | None = Query(
        default=None,
        alias="from",
        max_length=40,
        description="From this date (its start) or instant (with offset); default: 7 days "
        "(day) or 24 hours (hour) before `to`",
    ),
    to: str | None = Query(
        default=None,
        max_length=40,
        description="Until this instant (exclusive) or through this date; default: now",
    ),
    state: ApiState = Depends(api_state),
) -> MetricsSummary:
    """The aggregated figures: at most 93 days of days or 7 days of hours per request."""
    end = _instant("to", to, end=True) if to else datetime.now(UTC)
    start = _instant("from", from_, end=False) if from_ else end - DEFAULT_RANGE[period]
    start = period_start(period, start)
    if start >= end:
        raise ApiError(422, "invalid_range", "`from` must be before `to`")
    if end - start > MAX_RANGE[period] + PERIOD_LENGTH[period]:
        raise ApiError(
            422,
            "invalid_range",
            f"at most {MAX_RANGE[period].days} days of {period.value}s per request",
        )
    found = await asyncio.to_thread(MetricsStore(state.engine).summary, period, start, end)
    return MetricsSummary(
        period=period,
        from_=start,
        to=end,
        series=[
            SummarySeries(
                metric=s.metric,
                labels=s.labels,
                points=[
                    SummaryPoint(start=p.start, count=p.count, sum=p.sum, p50=p.p50, p95=p.p95)
                    for p in s.points
                ],
            )
            for s in found
        ],
    )
