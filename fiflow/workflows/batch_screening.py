"""BatchScreeningWorkflow: one batch file screened against the FI's conditions, its alerts
started at a bounded rate; and BatchInboxSweepWorkflow, run by the inbox schedule.

One run per file: the workflow ID comes from the file's checksum (`batch-<sha256 prefix>`,
see fiflow.integrations.batch_intake). The steps pass ids and counts only:

1. prepare: read the stored file once, set malformed rows aside (line and reasons), split
   the valid rows into chunk files by customer, store the plan and the rules it loaded;
2. screen: each chunk on any worker, `parallelism` at a time; each stores its matches and
   planned alerts (fraud alerts one per transaction, a digest per customer) once;
3. alert: pages of planned alerts started at `alerts_per_second`, resumable from the stored
   started flags (and idempotent anyway by the alerts' workflow IDs);
4. finish: final counts, chunk files deleted (the stored file stays).

A long file continues as new between chunk groups or alert pages, carrying only where it is.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from fiflow.activities.batch_screening import (
        AlertsPage,
        BatchActivities,
        BatchPlan,
        ChunkResult,
        FinishBatch,
        PrepareBatch,
        ScreenChunk,
        StartAlerts,
        alert_start_timeout,
    )
    from fiflow.domain import search_attributes as sa
    from fiflow.domain.feeds.batches import BatchInput, BatchResult, SweepInbox, SweepResult

# Polars and the database: retry for a while (a busy database, a worker restart), then fail
# the step visibly rather than loop for ever on a bug.
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=30,
    non_retryable_error_types=["batch.unknown"],
)
QUICK_STEP: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=1),
    "retry_policy": STEP_RETRY,
}
# Chunk groups per run before continuing as new even if the server does not suggest it.
MAX_CHUNKS_PER_RUN = 1000
ALERT_PAGES_PER_RUN = 200


@workflow.defn
class BatchScreeningWorkflow:
    """Screens one batch file and starts its alerts (see the module docstring)."""

    def __init__(self) -> None:
        self._chunks_done = 0

    @workflow.run
    async def run(self, inp: BatchInput) -> BatchResult:
        """Prepare, screen every chunk, start the alerts, finish."""
        heartbeat = timedelta(seconds=inp.heartbeat_seconds)
        long_step: dict[str, Any] = {
            "start_to_close_timeout": timedelta(hours=1),
            "heartbeat_timeout": heartbeat,
            "retry_policy": STEP_RETRY,
        }
        chunks = inp.chunks
        if chunks is None:
            workflow.set_current_details("reading the file")
            plan: BatchPlan = await workflow.execute_activity_method(
                BatchActivities.prepare, PrepareBatch(batch_id=inp.batch_id), **long_step
            )
            if plan.error is not None:
                workflow.set_current_details(f"failed: {plan.error}")
                return BatchResult(batch_id=inp.batch_id, state="failed", error=plan.error)
            if plan.rules_version:
                workflow.upsert_search_attributes(
                    [sa.RULE_SET_VERSION.value_set(plan.rules_version)]
                )
            chunks = plan.chunks
        start = inp.next_chunk or 0
        if start < chunks:
            await self._screen(inp, start, chunks, long_step)
            if self._chunks_done + start < chunks:
                workflow.continue_as_new(
                    inp.model_copy(
                        update={"next_chunk": start + self._chunks_done, "chunks": chunks}
                    )
                )
        totals: BatchResult = await workflow.execute_activity_method(
            BatchActivities.begin_alerting, FinishBatch(batch_id=inp.batch_id), **QUICK_STEP
        )
        await self._alert(inp, totals, heartbeat, chunks)
        result: BatchResult = await workflow.execute_activity_method(
            BatchActivities.finish, FinishBatch(batch_id=inp.batch_id), **QUICK_STEP
        )
        workflow.set_current_details(
            f"done: {result.rows_read} read, {result.rows_rejected} rejected, "
            f"{result.rows_matched} matched, {result.alerts_started} alerts"
        )
        return result

    async def _screen(
        self, inp: BatchInput, start: int, chunks: int, options: dict[str, Any]
    ) -> None:
        """Screen chunks start.., at most `parallelism` at once, until done or time to roll."""
        limit = asyncio.Semaphore(inp.parallelism)

        async def one(n: int) -> ChunkResult:
            async with limit:
                result: ChunkResult = await workflow.execute_activity_method(
                    BatchActivities.screen_chunk,
                    ScreenChunk(batch_id=inp.batch_id, chunk=n),
                    **options,
                )
                self._chunks_done += 1
                workflow.set_current_details(
                    f"screening: {start + self._chunks_done}/{chunks} chunks"
                )
                return result

        group = inp.parallelism * 4
        for first in range(start, chunks, group):
            await asyncio.gather(*(one(n) for n in range(first, min(first + group, chunks))))
            if (
                self._chunks_done >= MAX_CHUNKS_PER_RUN
                or workflow.info().is_continue_as_new_suggested()
            ):
                return

    async def _alert(
        self, inp: BatchInput, totals: BatchResult, heartbeat: timedelta, chunks: int
    ) -> None:
        """Start the planned alerts page by page, at the batch's rate."""
        # About a minute of starts per page: progress shows, and a retry redoes little.
        limit = max(1, min(5000, int(inp.alerts_per_second * 60)))
        remaining = totals.alerts_planned - totals.alerts_started
        for _ in range(ALERT_PAGES_PER_RUN):
            if remaining <= 0:
                return
            workflow.set_current_details(
                f"alerting: {totals.alerts_planned - remaining}/{totals.alerts_planned} started"
            )
            page: AlertsPage = await workflow.execute_activity_method(
                BatchActivities.start_alerts,
                StartAlerts(batch_id=inp.batch_id, per_second=inp.alerts_per_second, limit=limit),
                start_to_close_timeout=alert_start_timeout(limit, inp.alerts_per_second),
                heartbeat_timeout=heartbeat,
                retry_policy=STEP_RETRY,
            )
            remaining = page.remaining
        if remaining > 0:
            workflow.continue_as_new(
                inp.model_copy(update={"next_chunk": chunks, "chunks": chunks})
            )


@workflow.defn
class BatchInboxSweepWorkflow:
    """One pass over the batch inbox (started by its Temporal Schedule)."""

    @workflow.run
    async def run(self, inp: SweepInbox) -> SweepResult:
        """Take in every settled file; each starts its own BatchScreeningWorkflow."""
        result: SweepResult = await workflow.execute_activity_method(
            BatchActivities.sweep_inbox,
            inp,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=STEP_RETRY,
        )
        workflow.set_current_details(
            f"took in {len(result.batch_ids)} file(s), set aside {result.set_aside}"
        )
        return result
