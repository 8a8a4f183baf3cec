"""Storing the results report of a finished credit application."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import BaseModel
from temporalio import activity

from fiflow.activities.metrics import record
from fiflow.domain.credit_report import CreditReport
from fiflow.domain.metrics import credit_events
from fiflow.integrations.metrics_store import MetricsStore
from fiflow.integrations.reports import CreditReportStore, StoredReport


class StoreCreditReport(BaseModel):
    """A compiled report to store."""

    report: CreditReport


class ReportActivities:
    """Writes to the report store (the first write of an application wins)."""

    def __init__(self, store: CreditReportStore, metrics: MetricsStore | None = None):
        self._store = store
        self._metrics = metrics

    @activity.defn(name="store_credit_report")
    async def store_credit_report(self, req: StoreCreditReport) -> bool:
        """Store the report; False when it was already stored (a retried activity)."""
        report = req.report
        row = StoredReport(
            application_id=report.application_id,
            product=report.product,
            decision=report.decision.value,
            decided_by=report.decided_by,
            rule_set_version=report.rule_set_version or "unknown",
            submitted_at=report.submitted_at,
            completed_at=report.completed_at,
            stored_at=datetime.now(UTC),
            report=report.model_dump(mode="json"),
        )
        saved = await asyncio.to_thread(self._store.save, row)
        if self._metrics is not None:
            # The business metrics come from the report itself: no extra workflow step, and
            # a retry (saved is False) records nothing twice (the facts are keyed).
            await record(self._metrics, credit_events(report))
        return saved
