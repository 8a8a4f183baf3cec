"""fiflow's scheduled jobs as Temporal Schedules, created or brought up to date idempotently.

`fiflow up` applies them when the stack is up; `fiflow schedules apply` does the same on a
real cluster. Applying keeps a schedule's paused state: an operator who paused one in the
Web UI keeps it paused across deploys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from fiflow.domain.feeds.batches import SweepInbox
from fiflow.domain.metrics import AggregateMetrics, PeriodKind
from fiflow.domain.retention import RetentionInput
from fiflow.integrations.settings import Settings

# Names, not imports: starters may import workflows, but the type name is what a
# schedule stores, and it must not change with a refactor.
RETENTION_WORKFLOW = "RetentionWorkflow"
BATCH_INBOX_WORKFLOW = "BatchInboxSweepWorkflow"
METRICS_WORKFLOW = "MetricsAggregationWorkflow"
METRICS_SCHEDULE = "fiflow-metrics"


@dataclass(frozen=True)
class Applied:
    """What applying did to one schedule."""

    schedule_id: str
    outcome: str  # created | updated


def schedules(settings: Settings) -> dict[str, Schedule]:
    """Every schedule fiflow runs, by schedule ID."""
    retention = RetentionInput(
        message_ledger=timedelta(days=settings.sms_ledger_retention_days),
        interaction_events=timedelta(days=settings.interaction_events_retention_days),
        metric_events=timedelta(days=settings.metric_events_retention_days),
        results_reports=timedelta(days=settings.results_reports_retention_days),
    )
    return {
        "fiflow-retention": Schedule(
            action=ScheduleActionStartWorkflow(
                RETENTION_WORKFLOW,
                retention,
                id="retention",  # the schedule appends the start time: one ID per run
                task_queue=settings.task_queue,
                static_summary="Retention: delete expired records",
            ),
            spec=ScheduleSpec(
                intervals=[
                    ScheduleIntervalSpec(every=timedelta(hours=settings.retention_every_hours))
                ]
            ),
            # A slow pass is not doubled by the next one; a missed one runs once, late.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            state=ScheduleState(note="fiflow: deletes expired records (see README, Operate)"),
        ),
        "fiflow-batch-inbox": Schedule(
            action=ScheduleActionStartWorkflow(
                BATCH_INBOX_WORKFLOW,
                SweepInbox(),
                id="batch-inbox",  # the schedule appends the start time: one ID per run
                task_queue=settings.task_queue,
                static_summary="Batch inbox: take in transaction files",
            ),
            spec=ScheduleSpec(
                intervals=[
                    ScheduleIntervalSpec(
                        every=timedelta(minutes=settings.batch_inbox_every_minutes)
                    )
                ]
            ),
            # Two sweeps at once would race for the same files; a slow one is not doubled.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            state=ScheduleState(
                note="fiflow: starts a batch screening per file in the inbox (docs/feeds.md)"
            ),
        ),
        METRICS_SCHEDULE: Schedule(
            action=ScheduleActionStartWorkflow(
                METRICS_WORKFLOW,
                AggregateMetrics(
                    kinds=[
                        PeriodKind(k) for k in dict.fromkeys(settings.metrics_periods.split(","))
                    ]
                ),
                id="metrics",  # the schedule appends the start time: one ID per run
                task_queue=settings.task_queue,
                static_summary="Metrics: fold business facts into hours and days",
            ),
            spec=ScheduleSpec(
                intervals=[
                    ScheduleIntervalSpec(
                        every=timedelta(minutes=settings.metrics_aggregate_every_minutes)
                    )
                ]
            ),
            # A pass folds every fact not yet folded: a skipped or missed one loses nothing.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            state=ScheduleState(
                note="fiflow: business metrics per hour and day (README, Business metrics)"
            ),
        ),
    }


async def apply_schedules(client: Client, settings: Settings) -> list[Applied]:
    """Create each schedule, or update it to the current definition (keeping it paused)."""
    done = []
    for schedule_id, schedule in schedules(settings).items():
        try:
            await client.create_schedule(schedule_id, schedule)
            done.append(Applied(schedule_id, "created"))
        except ScheduleAlreadyRunningError:

            def keep_state(
                current: ScheduleUpdateInput, new: Schedule = schedule
            ) -> ScheduleUpdate:
                state = current.description.schedule.state
                new.state = ScheduleState(note=new.state.note, paused=state.paused)
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(schedule_id).update(keep_state)
            done.append(Applied(schedule_id, "updated"))
    return done
