"""RetentionWorkflow: one pass of the retention job (started by its Temporal Schedule)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from fiflow.activities.retention import Purge, RetentionActivities
    from fiflow.domain.retention import RetentionInput, RetentionResult
    from fiflow.workflows.options import BACKOFFICE


@workflow.defn
class RetentionWorkflow:
    """Deletes expired records; each purge is independent and idempotent."""

    @workflow.run
    async def run(self, inp: RetentionInput) -> RetentionResult:
        """Purge each kind of record older than its retention."""
        now = workflow.now()
        ledger = await workflow.execute_activity_method(
            RetentionActivities.purge_message_ledger,
            Purge(older_than=now - inp.message_ledger),
            **BACKOFFICE,
        )
        events = await workflow.execute_activity_method(
            RetentionActivities.purge_interaction_events,
            Purge(older_than=now - inp.interaction_events),
            **BACKOFFICE,
        )
        result = RetentionResult(message_ledger=ledger, interaction_events=events)
        # Passes that began before these purges existed went without them (architecture.md,
        # section 7); a pass lasts minutes, so this can become deprecate_patch soon.
        if workflow.patched("retention-metrics-and-reports"):
            result.metric_events = await workflow.execute_activity_method(
                RetentionActivities.purge_metric_events,
                Purge(older_than=now - inp.metric_events),
                **BACKOFFICE,
            )
            result.results_reports = await workflow.execute_activity_method(
                RetentionActivities.purge_results_reports,
                Purge(older_than=now - inp.results_reports),
                **BACKOFFICE,
            )
        workflow.set_current_details(
            f"purged {ledger} message ids, {events} interaction events, "
            f"{result.metric_events} metric facts, {result.results_reports} results reports"
        )
        return result
