"""Retention: delete what fiflow keeps only for a while (run by the retention schedule)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from pydantic import BaseModel
from temporalio import activity

from fiflow.integrations.interactions_store import InteractionStore
from fiflow.integrations.message_ledger import MessageLedger
from fiflow.integrations.metrics_store import MetricsStore
from fiflow.integrations.results_reports import ResultsReportStore


class Purge(BaseModel):
    """Delete the records older than this instant."""

    older_than: datetime


class RetentionActivities:
    """Each purge is one DELETE; running one twice deletes nothing more (idempotent)."""

    def __init__(
        self,
        ledger: MessageLedger,
        interactions: InteractionStore,
        metrics: MetricsStore,
        reports: ResultsReportStore,
    ):
        self._ledger = ledger
        self._interactions = interactions
        self._metrics = metrics
        self._reports = reports

    @activity.defn(name="purge_message_ledger")
    async def purge_message_ledger(self, req: Purge) -> int:
        """SMS MessageSids accepted before the cutoff; how many went."""
        return await asyncio.to_thread(self._ledger.purge, req.older_than)

    @activity.defn(name="purge_interaction_events")
    async def purge_interaction_events(self, req: Purge) -> int:
        """Interaction events accepted before the cutoff; how many went."""
        return await asyncio.to_thread(self._interactions.purge_events, req.older_than)

    @activity.defn(name="purge_metric_events")
    async def purge_metric_events(self, req: Purge) -> int:
        """Raw business-metric facts of the whole days before the cutoff (their hour and
        day figures stay); how many went."""
        return await asyncio.to_thread(self._metrics.purge_events, req.older_than)

    @activity.defn(name="purge_results_reports")
    async def purge_results_reports(self, req: Purge) -> int:
        """Results reports of alerts and follow-ups completed before the cutoff."""
        return await asyncio.to_thread(self._reports.purge, req.older_than)
