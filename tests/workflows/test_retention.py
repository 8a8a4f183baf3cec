"""RetentionWorkflow on the time-skipping server, over the real stores on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from fiflow.activities.retention import RetentionActivities
from fiflow.domain.metrics import Metric, MetricEvent, PeriodKind, period_start
from fiflow.domain.results_reports import ReportKind
from fiflow.domain.retention import RetentionInput
from fiflow.integrations.metrics_store import MetricsStore
from fiflow.integrations.results_reports import ResultsReportStore
from fiflow.integrations.settings import Settings
from fiflow.workers.main import build_worker
from fiflow.workflows.retention import RetentionWorkflow
from tests.fixtures.retention import seeded_stores
from tests.integrations.test_results_report_store import alert


def _fact(key: str, at: datetime) -> MetricEvent:
    return MetricEvent(
        key=key, metric=Metric.TRIGGERS_FIRED, labels={"trigger": "t1"}, occurred_at=at
    )


async def test_a_retention_pass_deletes_only_what_expired(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    # The workflow measures retention from its own clock: the test server's.
    url, engine, ledger, interactions = seeded_stores(
        tmp_path,
        messages={"SM1": timedelta(days=40), "SM2": timedelta(days=20), "SM3": timedelta(days=1)},
        events={"ev1": timedelta(days=15), "ev2": timedelta(days=5)},
        interaction_id="int-9",
    )
    # Metric facts and results reports by age: the workflow's clock is near the real one.
    now = datetime.now(UTC)
    metrics, reports = MetricsStore(engine), ResultsReportStore(engine)
    metrics.record([_fact("f-old", now - timedelta(days=500)), _fact("f-new", now)], now)
    metrics.aggregate([PeriodKind.DAY], now)
    reports.save(alert("al-old", now - timedelta(days=40)), now)
    reports.save(alert("al-new", now - timedelta(days=1)), now)
    retention = RetentionActivities(ledger, interactions, metrics, reports)
    settings = Settings(task_queue=task_queue, database_url=url)
    worker = build_worker(
        time_skipping_env.client,
        settings,
        [
            retention.purge_message_ledger,
            retention.purge_interaction_events,
            retention.purge_metric_events,
            retention.purge_results_reports,
        ],
    )
    async with worker:
        result = await time_skipping_env.client.execute_workflow(
            RetentionWorkflow.run,
            RetentionInput(
                message_ledger=timedelta(days=30),
                interaction_events=timedelta(days=10),
                metric_events=timedelta(days=400),
                results_reports=timedelta(days=30),
            ),
            id="retention-test",
            task_queue=task_queue,
        )
    assert (result.message_ledger, result.interaction_events) == (1, 1)
    assert (result.metric_events, result.results_reports) == (1, 1)
    assert [ledger.seen(s) for s in ("SM1", "SM2", "SM3")] == [False, True, True]
    assert [e.event_id for e in interactions.events("int-9")] == ["ev2"]
    assert [key for key, *_ in metrics.events()] == ["f-new"]
    # The day figure of the purged facts stays.
    old_day = period_start(PeriodKind.DAY, now - timedelta(days=500))
    [series] = metrics.summary(PeriodKind.DAY, old_day, old_day + timedelta(days=1))
    assert [p.count for p in series.points] == [1]
    assert [s.report.subject_id for s in reports.list(ReportKind.ALERT).items] == ["al-new"]
    engine.dispose()
