"""The metrics aggregation schedule on the real dev server: applied with the others, and a
triggered run folds the recorded facts into the periods the summary reads."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import ScheduleActionStartWorkflow, ScheduleIntervalSpec
from temporalio.testing import WorkflowEnvironment

from fiflow.activities.metrics import MetricsActivities
from fiflow.domain.metrics import Metric, MetricEvent, PeriodKind
from fiflow.integrations.database import create_db_engine, upgrade_database
from fiflow.integrations.metrics_store import MetricsStore
from fiflow.integrations.settings import Settings
from fiflow.starters.schedules import METRICS_SCHEDULE, apply_schedules
from fiflow.workers.main import build_worker
from tests.starters.test_schedules import dev_server  # noqa: F401 - a fixture


async def test_the_metrics_schedule_is_applied_and_its_run_folds_the_facts(
    dev_server: WorkflowEnvironment,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    store = MetricsStore(engine)
    now = datetime.now(UTC)
    store.record(
        [
            MetricEvent(
                key="alert-x:alerts_started",
                metric=Metric.ALERTS_STARTED,
                labels={"type": "card_fraud_suspected", "source": "batch", "channel": "sms"},
                occurred_at=now,
            )
        ],
        now,
    )
    settings = Settings(
        task_queue=f"tq-{uuid.uuid4().hex[:8]}",
        database_url=url,
        metrics_periods="day",
        metrics_aggregate_every_minutes=15,
    )
    client = dev_server.client
    await apply_schedules(client, settings)
    handle = client.get_schedule_handle(METRICS_SCHEDULE)
    described = await handle.describe()
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "MetricsAggregationWorkflow"
    assert described.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(minutes=15))]

    activities = MetricsActivities(store)
    async with build_worker(client, settings, [activities.aggregate_metrics]):
        await handle.trigger()
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        deadline = time.monotonic() + 30
        while not (series := store.summary(PeriodKind.DAY, day, day + timedelta(days=1))):
            assert time.monotonic() < deadline, "the triggered run folded nothing"
            await asyncio.sleep(0.2)
    assert [(s.metric, s.labels["source"], [p.count for p in s.points]) for s in series] == [
        ("alerts_started", "batch", [1])
    ]
    # Only the configured kind: no hourly figures.
    assert store.summary(PeriodKind.HOUR, day, day + timedelta(days=1)) == []
    engine.dispose()
