"""MetricsAggregationWorkflow on the time-skipping server, over the real store on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from fiflow.activities.metrics import MetricsActivities
from fiflow.domain.metrics import AggregateMetrics, Metric, MetricEvent, PeriodKind
from fiflow.integrations.database import create_db_engine, upgrade_database
from fiflow.integrations.metrics_store import MetricsStore
from fiflow.integrations.settings import Settings
from fiflow.workers.main import build_worker
from fiflow.workflows.metrics_aggregation import MetricsAggregationWorkflow

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _outcome(key: str, at: datetime, outcome: str) -> MetricEvent:
    return MetricEvent(
        key=key,
        metric=Metric.ALERT_OUTCOMES,
        labels={"type": "card_fraud_suspected", "outcome": outcome},
        occurred_at=at,
    )


async def test_a_pass_folds_new_facts_into_hours_and_days_and_a_second_pass_adds_nothing(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    store = MetricsStore(engine)
    store.record(
        [
            _outcome("a1", T0, "confirmed"),
            _outcome("a2", T0 + timedelta(minutes=30), "confirmed"),
            _outcome("a3", T0 + timedelta(hours=2), "contested"),
        ],
        T0,
    )
    settings = Settings(task_queue=task_queue, database_url=url)
    activities = MetricsActivities(store)
    worker = build_worker(
        time_skipping_env.client,
        settings,
        [activities.aggregate_metrics, activities.record_metric_events],
    )
    async with worker:
        first = await time_skipping_env.client.execute_workflow(
            MetricsAggregationWorkflow.run,
            AggregateMetrics(),
            id=f"metrics-{task_queue}-1",
            task_queue=task_queue,
        )
        second = await time_skipping_env.client.execute_workflow(
            MetricsAggregationWorkflow.run,
            AggregateMetrics(kinds=[PeriodKind.DAY]),
            id=f"metrics-{task_queue}-2",
            task_queue=task_queue,
        )
    # Hours: 10:00 confirmed, 12:00 contested; the day: both label sets.
    assert (first.events, first.periods) == (3, 4)
    assert (second.events, second.periods) == (0, 0)
    day = datetime(2026, 3, 2, tzinfo=UTC)
    days = store.summary(PeriodKind.DAY, day, day + timedelta(days=1))
    assert sorted((s.labels["outcome"], [p.count for p in s.points]) for s in days) == [
        ("confirmed", [2]),
        ("contested", [1]),
    ]
    hours = store.summary(PeriodKind.HOUR, day, day + timedelta(days=1))
    assert sorted(
        (s.labels["outcome"], [(p.start.hour, p.count) for p in s.points]) for s in hours
    ) == [
        ("confirmed", [(10, 2)]),
        ("contested", [(12, 1)]),
    ]
    engine.dispose()
