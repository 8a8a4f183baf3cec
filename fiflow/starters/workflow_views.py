"""Reading one business workflow for the API: its live state while it runs, its result after."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

T = TypeVar("T")


class Lookup(StrEnum):
    """Whether a workflow exists, and whether it still runs."""

    NOT_FOUND = "not_found"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass
class View(Generic[T]):
    """A workflow's status: the `status` query while it runs, its result once completed."""

    lookup: Lookup
    status: T | None = None
    run_status: str = ""


async def workflow_view(
    client: Client, workflow_id: str, workflow_type: str, result_type: type[T]
) -> View[T]:
    """The workflow's status; NOT_FOUND also for an ID that belongs to another workflow type."""
    handle = client.get_workflow_handle(workflow_id, result_type=result_type)
    try:
        desc = await handle.describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return View(Lookup.NOT_FOUND)
        raise
    if desc.workflow_type != workflow_type:
        return View(Lookup.NOT_FOUND)
    run_status = desc.status.name.lower() if desc.status else "unknown"
    if desc.status is WorkflowExecutionStatus.RUNNING:
        status = await handle.query("status", result_type=result_type)
        return View(Lookup.RUNNING, status, run_status)
    if desc.status is WorkflowExecutionStatus.COMPLETED:
        return View(Lookup.FINISHED, await handle.result(), run_status)
    # Failed, terminated, timed out: it exists and is over, with no result to show.
    return View(Lookup.FINISHED, None, run_status)
