"""Client-side operations on interactions and follow-ups, shared by the API and tests."""

from __future__ import annotations

import contextlib

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from fiflow.domain.follow_ups import FollowUpInput, FollowUpStatus
from fiflow.domain.interactions import InteractionEvent, InteractionInput, InteractionStatus
from fiflow.domain.keys import follow_up_workflow_id, interaction_workflow_id
from fiflow.integrations.settings import Settings
from fiflow.starters.workflow_views import View, workflow_view
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


async def interaction_view(client: Client, interaction_id: str) -> View[InteractionStatus]:
    """The interaction: a query while it runs, its result once closed."""
    return await workflow_view(
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


async def follow_up_view(client: Client, follow_up_id: str) -> View[FollowUpStatus]:
    """The follow-up: a query while it runs, its result once done."""
    return await workflow_view(
        client, follow_up_workflow_id(follow_up_id), "FollowUpWorkflow", FollowUpStatus
    )
