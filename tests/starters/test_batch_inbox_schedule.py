"""The batch inbox schedule on the real dev server: applied with its configured interval, and
a triggered sweep takes a dropped file in and screens it."""

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

from fiflow.integrations.batch_store import BatchState
from fiflow.starters.schedules import apply_schedules
from tests.fixtures.temporal import register_search_attributes, venv_binary
from tests.workflows.batch_harness import batch_harness, batch_settings, csv_bytes, txn


@pytest.fixture
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    try:
        await register_search_attributes(env.client)
        yield env
    finally:
        await env.shutdown()


async def test_the_inbox_schedule_sweeps_a_dropped_file_into_a_batch(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    settings = batch_settings(tmp_path, task_queue, batch_inbox_every_minutes=2.5)
    harness = batch_harness(dev_server.client, settings)
    client = dev_server.client
    await apply_schedules(client, settings)
    handle = client.get_schedule_handle("fiflow-batch-inbox")
    described = await handle.describe()
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.task_queue) == ("BatchInboxSweepWorkflow", task_queue)
    assert described.schedule.spec.intervals == [ScheduleIntervalSpec(every=timedelta(minutes=2.5))]

    settings.batch_inbox.mkdir(parents=True)
    dropped = settings.batch_inbox / "settlement-2026-11-01.csv"
    dropped.write_bytes(csv_bytes([txn("s-1", "cust-S", amount="5000.00", card_present="false")]))
    async with harness.worker():
        await handle.trigger()
        deadline = time.monotonic() + 30
        while True:
            batches = [harness.store.get(p.stem) for p in _batch_ids(settings.batch_dir)]
            if batches and all(b is not None and b.state.finished for b in batches):
                break
            assert time.monotonic() < deadline, f"the swept file was not screened: {batches}"
            await asyncio.sleep(0.2)

    [batch] = batches
    assert batch is not None and batch.state is BatchState.COMPLETED
    assert (batch.rows_read, batch.alerts_started) == (1, 1)
    assert not dropped.exists()
    assert [a.request.source_event_id for a in harness.started.fraud] == ["s-1"]


def _batch_ids(batch_dir: Path) -> list[Path]:
    # A stored file is <sha256>.<ext>; its batch is "b" + the first 32 hex digits.
    return [batch_dir / f"b{p.name[:32]}" for p in batch_dir.glob("*.csv")]
