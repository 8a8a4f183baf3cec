"""Taking in a batch file, from any entry point: store it, register it, start its workflow.

The API's upload, `fiflow feed batch` (through the API) and the inbox sweep all come here, so
the same file is one batch however and however often it arrives: its checksum names the batch
and the workflow (`batch-<checksum prefix>`), the batch row is inserted once, and a finished
batch is never started again (even after Temporal forgot the closed run). The workflow is
named by type (integrations sit below the workflow layer).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from fiflow.domain.feeds.batches import BatchInput
from fiflow.integrations.batch_files import StoredFile
from fiflow.integrations.batch_store import BatchRecord, BatchStore
from fiflow.integrations.settings import Settings

BATCH_WORKFLOW = "BatchScreeningWorkflow"


def batch_workflow_id(batch_id: str) -> str:
    """The batch's workflow ID: from the file's checksum, so one file is one run."""
    return f"batch-{batch_id.removeprefix('b')}"


@dataclass(frozen=True)
class Accepted:
    """A file taken in: its batch, and whether the same file had come before."""

    batch: BatchRecord
    duplicate: bool


def batch_input(settings: Settings, batch_id: str) -> BatchInput:
    """The workflow input for a batch, with this deployment's limits."""
    return BatchInput(
        batch_id=batch_id,
        parallelism=settings.batch_parallelism,
        alerts_per_second=settings.batch_alerts_per_second,
    )


async def start_batch(client: Client, settings: Settings, batch: BatchRecord) -> None:
    """Start the batch's workflow unless it finished; a running one is joined."""
    if batch.state.finished:
        return
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            BATCH_WORKFLOW,
            batch_input(settings, batch.batch_id),
            id=batch_workflow_id(batch.batch_id),
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Batch screening: {batch.source} {batch.format} file",
            static_details=f"batch {batch.batch_id}, {batch.size_bytes} bytes",
        )


async def accept(
    client: Client,
    settings: Settings,
    store: BatchStore,
    stored: StoredFile,
    source: str,
    received_at: datetime,
) -> Accepted:
    """Register a stored file and start its workflow (again, harmlessly, for a duplicate)."""
    batch, created = await asyncio.to_thread(
        store.register,
        stored.batch_id,
        sha256=stored.sha256,
        source=source,
        fmt=stored.format.value,
        size=stored.size,
        at=received_at,
    )
    # A duplicate whose first arrival crashed before its start still gets its one run.
    await start_batch(client, settings, batch)
    return Accepted(batch=batch, duplicate=not created)
