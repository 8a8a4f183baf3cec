"""MetricsAggregationWorkflow: one pass of the metrics aggregation (started by its Schedule)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from fiflow.activities.metrics import AggregatePass, MetricsActivities
    from fiflow.domain.metrics import AggregateMetrics, AggregationResult

# A backlog folds in batches inside one attempt; a database outage retries for a while and
# then leaves the events for the next pass (they stay marked as not folded).
AGGREGATE: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=10),
    "schedule_to_close_timeout": timedelta(minutes=50),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
    ),
}


@workflow.defn
class MetricsAggregationWorkflow:
    """Folds the business facts recorded since the last pass into their hours and days."""

    @workflow.run
    async def run(self, inp: AggregateMetrics) -> AggregationResult:
        """Recompute the periods that gained events; each replaces what was stored."""
        result = await workflow.execute_activity_method(
            MetricsActivities.aggregate_metrics,
            AggregatePass(request=inp, now=workflow.now()),
            **AGGREGATE,
        )
        workflow.set_current_details(
            f"folded {result.events} events into {result.periods} period figures "
            f"({', '.join(k.value for k in inp.kinds)})"
        )
        return result
