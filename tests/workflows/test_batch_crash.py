"""A worker killed (SIGKILL) while a batch starts its alerts: another worker finishes the batch,
and every alert exists exactly once. On the real dev server, whose visibility lists every
alert workflow run that was started."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from fiflow.domain.feeds.batches import BatchInput, BatchResult
from fiflow.integrations.batch_files import FileFormat, store_stream
from fiflow.integrations.batch_intake import BATCH_WORKFLOW, batch_workflow_id
from tests.fixtures.temporal import register_search_attributes, venv_binary
from tests.workflows.batch_harness import batch_harness, batch_settings, csv_bytes, txn

CUSTOMERS = 10


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


def _rows() -> list[dict[str, str]]:
    """Per customer: a fraud alert, and two big purchases told as one digest."""
    rows = []
    for n in range(CUSTOMERS):
        customer = f"cust-{n:02d}"
        rows += [
            txn(f"t{n:02d}-fraud", customer, amount="6000.00", card_present="false"),
            txn(f"t{n:02d}-big1", customer, amount="800.00", minutes=1),
            txn(f"t{n:02d}-big2", customer, amount="900.00", minutes=2),
        ]
    return rows


def _spawn_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A worker process, once it polls."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.workflows.batch_worker_process"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    return proc


async def _alert_runs(client: Client, task_queue: str) -> list[str]:
    query = (
        f"TaskQueue = '{task_queue}' AND "
        "WorkflowType IN ('FraudAlertWorkflow', 'InformationalAlertWorkflow')"
    )
    return [w.id async for w in client.list_workflows(query)]


async def test_a_worker_killed_mid_file_resumes_elsewhere_without_a_second_alert(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    task_queue = f"tq-{uuid.uuid4().hex[:12]}"
    # 8 starts a second (below): the kill lands while alerts are being started.
    settings = batch_settings(tmp_path, task_queue, batch_chunk_rows=6)
    harness = batch_harness(dev_server.client, settings)
    stored = store_stream(settings.batch_dir, [csv_bytes(_rows())], FileFormat.CSV)
    batch, _ = harness.store.register(
        stored.batch_id,
        sha256=stored.sha256,
        source="default",
        fmt="csv",
        size=stored.size,
        at=datetime.now(UTC),
    )
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
        "FIFLOW_TASK_QUEUE": task_queue,
        "FIFLOW_DATABASE_URL": settings.database_url,
        "FIFLOW_BATCH_DIR": str(settings.batch_dir),
        "FIFLOW_RULES_DIR": str(settings.rules_dir),
        "FIFLOW_PAYLOAD_ENCRYPTION": "false",
        "FIFLOW_BATCH_CHUNK_ROWS": "6",
    }
    doomed = _spawn_worker(env, tmp_path / "worker.log")
    try:
        handle = await dev_server.client.start_workflow(
            BATCH_WORKFLOW,
            # A short heartbeat timeout: the dead worker's step moves on within seconds.
            BatchInput(batch_id=batch.batch_id, alerts_per_second=8, heartbeat_seconds=2),
            id=batch_workflow_id(batch.batch_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        deadline = time.monotonic() + 30
        while True:
            current = harness.store.get(batch.batch_id)
            assert current is not None
            if current.alerts_started >= 3:
                break
            assert time.monotonic() < deadline, f"no alerts started: {current}"
            await asyncio.sleep(0.1)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        if doomed.poll() is None:
            doomed.kill()
            doomed.wait()

    killed_at = harness.store.get(batch.batch_id)
    assert killed_at is not None and 3 <= killed_at.alerts_started < 2 * CUSTOMERS
    async with harness.worker():
        result = BatchResult.model_validate(await handle.result())
        expected = 2 * CUSTOMERS  # a fraud alert and a digest per customer
        deadline = time.monotonic() + 20
        runs = await _alert_runs(dev_server.client, task_queue)
        while len(runs) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            runs = await _alert_runs(dev_server.client, task_queue)

    assert (result.state, result.rows_read, result.rows_matched) == ("completed", 30, 30)
    assert (result.alerts_planned, result.alerts_started) == (expected, expected)
    # Every alert once: one run per alert workflow ID, and no more IDs than alerts.
    assert len(runs) == expected
    assert len(set(runs)) == expected
