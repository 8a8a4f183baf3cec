"""Scheduled jobs on the real dev server: applied idempotently, paused state kept, and the
retention job deletes exactly what has expired."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import ScheduleActionStartWorkflow, ScheduleIntervalSpec
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from fiflow.activities.retention import RetentionActivities
from fiflow.domain.retention import RetentionInput
from fiflow.integrations.metrics_store import MetricsStore
from fiflow.integrations.results_reports import ResultsReportStore
from fiflow.integrations.settings import Settings
from fiflow.starters.schedules import apply_schedules, schedules
from fiflow.workers.main import build_worker
from tests.fixtures.retention import seeded_stores
from tests.fixtures.temporal import venv_binary


@pytest.fixture
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (the time-skipping server has no schedules)."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def test_schedules_apply_idempotently_keep_pause_and_the_retention_job_purges(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    url, engine, ledger, interactions = seeded_stores(
        tmp_path,
        messages={"SMold": timedelta(days=100), "SMnew": timedelta(days=1)},
        events={"ev-old": timedelta(days=120), "ev-new": timedelta(hours=1)},
        interaction_id="int-1",
    )

    settings = Settings(task_queue=f"tq-{uuid.uuid4().hex[:8]}", database_url=url)
    client = dev_server.client
    assert [(a.schedule_id, a.outcome) for a in await apply_schedules(client, settings)] == [
        ("fiflow-retention", "created"),
        ("fiflow-batch-inbox", "created"),
        ("fiflow-metrics", "created"),
    ]
    assert [a.outcome for a in await apply_schedules(client, settings)] == ["updated"] * 3

    handle = client.get_schedule_handle("fiflow-retention")
    described = await handle.describe()
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "RetentionWorkflow"
    assert action.task_queue == settings.task_queue
    assert described.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(hours=24))]

    # Paused by an operator: applying again (a deploy) must not resume it.
    await handle.pause(note="maintenance")
    await apply_schedules(client, settings)
    assert (await handle.describe()).schedule.state.paused is True
    await handle.unpause()

    retention = RetentionActivities(
        ledger, interactions, MetricsStore(engine), ResultsReportStore(engine)
    )
    activities = [
        retention.purge_message_ledger,
        retention.purge_interaction_events,
        retention.purge_metric_events,
        retention.purge_results_reports,
    ]
    async with build_worker(client, settings, activities):
        await handle.trigger()

        def purged() -> bool:
            events = [e.event_id for e in interactions.events("int-1")]
            return not ledger.seen("SMold") and events == ["ev-new"]

        deadline = time.monotonic() + 30
        while not purged():
            assert time.monotonic() < deadline, "the retention run did not purge"
            await asyncio.sleep(0.2)
        assert ledger.seen("SMnew")  # recent records stay
    engine.dispose()


def test_the_retention_action_carries_each_configured_retention() -> None:
    settings = Settings(metric_events_retention_days=30, results_reports_retention_days=60)
    action = schedules(settings)["fiflow-retention"].action
    assert isinstance(action, ScheduleActionStartWorkflow)
    [retention] = action.args
    assert isinstance(retention, RetentionInput)
    assert (retention.metric_events, retention.results_reports) == (
        timedelta(days=30),
        timedelta(days=60),
    )
