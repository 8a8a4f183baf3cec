"""Business metrics: recording a finished flow's facts (and its results report), and folding
them into periods."""

from __future__ import annotations

import asyncio
from datetime import datetime

from pydantic import BaseModel
from temporalio import activity

from fiflow.domain.metrics import (
    AggregateMetrics,
    AggregationResult,
    MetricEvent,
    RecordMetricEvents,
)
from fiflow.integrations import metrics
from fiflow.integrations.metrics_store import MetricsStore, now_utc
from fiflow.integrations.results_reports import ResultsReportStore


class AggregatePass(BaseModel):
    """One aggregation pass, at the workflow's clock."""

    request: AggregateMetrics
    now: datetime


class MetricsActivities:
    """Writes facts once per key (the Prometheus counters follow the store) and folds them."""

    def __init__(self, store: MetricsStore, reports: ResultsReportStore | None = None):
        self._store = store
        self._reports = reports

    @activity.defn(name="record_metric_events")
    async def record_metric_events(self, req: RecordMetricEvents) -> int:
        """Store the facts and the results report they carry; count the new facts for
        Prometheus. Returns how many facts were new."""
        if self._reports is not None:
            # Insert-or-ignore by flow, like the facts by key: a retried attempt (or a local
            # activity re-run after a lost marker) stores nothing new.
            at = now_utc()
            for report in (e.report for e in req.events if e.report is not None):
                await asyncio.to_thread(self._reports.save, report, at)
        return len(await record(self._store, req.events))

    @activity.defn(name="aggregate_metrics")
    async def aggregate_metrics(self, req: AggregatePass) -> AggregationResult:
        """Recompute every period that holds an event not yet folded (or every one: `full`)."""
        return await asyncio.to_thread(
            self._store.aggregate, req.request.kinds, req.now, req.request.full
        )


async def record(store: MetricsStore, events: list[MetricEvent]) -> list[MetricEvent]:
    """Store the facts and count those new to the store on this activity's metric meter.

    Shared by the activities that derive facts from what they already store (the credit
    report): one insert-or-ignore, so a retry neither stores nor counts a fact twice.
    """
    new = await asyncio.to_thread(store.record, events, now_utc())
    metrics.count(activity.metric_meter(), new)
    return new
