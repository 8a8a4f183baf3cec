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
        workflow.set_current_details(f"purged {ledger} message ids, {events} interaction events")
        return RetentionResult(message_ledger=ledger, interaction_events=events)
