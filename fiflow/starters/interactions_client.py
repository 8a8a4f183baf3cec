"""Client-side operations on interactions and follow-ups, shared by the API and tests."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from fiflow.domain.follow_ups import FollowUpInput, FollowUpStatus
from fiflow.domain.interactions import InteractionEvent, InteractionInput, InteractionStatus
from fiflow.domain.keys import follow_up_workflow_id, interaction_workflow_id
from fiflow.integrations.settings import Settings
from fiflow.workflows.follow_up import FollowUpWorkflow
from fiflow.workflows.interaction import InteractionWorkflow


async def deliver_event(
    client: Client, settings: Settings, inp: InteractionInput, event: InteractionEvent
) -> bool:
    """Hand an event to its interaction (started if needed); False when it already closed."""
    try:
        await client.start_workflow(
            InteractionWorkflow.run,
            inp,
            id=interaction_workflow_id(inp.interaction_id),
            task_queue=settings.task_queue,
            start_signal="event",
            start_signal_args=[event],
            # A closed interaction is never reopened by a late event.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"{inp.channel.value} interaction {inp.interaction_id}",
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


class Lookup(StrEnum):
    """Whether a workflow exists and whether it still runs."""

    NOT_FOUND = "not_found"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass
class View:
    """A workflow's status as the API shows it."""

    lookup: Lookup
    status: Any = None
    run_status: str = ""


async def _view(client: Client, workflow_id: str, workflow_type: str, result_type: Any) -> View:
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
        return View(
            Lookup.RUNNING, await handle.query("status", result_type=result_type), run_status
        )
    if desc.status is WorkflowExecutionStatus.COMPLETED:
        return View(Lookup.FINISHED, await handle.result(), run_status)
    return View(Lookup.FINISHED, None, run_status)


async def interaction_view(client: Client, interaction_id: str) -> View:
    """The interaction: a query while it runs, its result once closed."""
    return await _view(
        client, interaction_workflow_id(interaction_id), "InteractionWorkflow", InteractionStatus
    )


async def start_follow_up(client: Client, settings: Settings, inp: FollowUpInput) -> None:
    """Start a follow-up once per follow_up_id (a repeat starts nothing)."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            FollowUpWorkflow.run,
            inp,
            id=follow_up_workflow_id(inp.follow_up_id),
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Follow-up {inp.follow_up_id} on ticket {inp.ticket_id}",
        )


async def follow_up_view(client: Client, follow_up_id: str) -> View:
    """The follow-up: a query while it runs, its result once done."""
    return await _view(
        client, follow_up_workflow_id(follow_up_id), "FollowUpWorkflow", FollowUpStatus
    )
