"""Temporal accounting: history events and Temporal Cloud billable actions per flow.

Billable actions follow Temporal Cloud's published rules (docs.temporal.io/cloud/actions),
as far as a history shows them:

- workflow started: 1 (client start, continue-as-new, child start: the child's own start
  is in the parent's 2 below); a signal-with-start is 1 in all, though its history shows a
  start and a signal (recognised: the signal is event 2, right after the start);
- activity started or retried: 1 per attempt (scheduled, plus attempts past the first);
- local activities: all local-activity markers recorded by one workflow task are 1
  together (Cloud counts a workflow task's local activities as one action); a patch's
  marker (`workflow.patched`) is not a local activity or a side effect and is free, like
  its TemporalChangeVersion upsert;
- timer started: 1;
- signal: 1 per signal, counted where it is received (WorkflowExecutionSignaled), whoever
  sent it: the sender's SignalExternalWorkflowExecutionInitiated is the same signal;
- search-attribute upsert: 1 per upsert command, except one that sets only
  TemporalChangeVersion (exempt);
- child workflow: 2 (its start and its execution);
- update accepted: 1; workflow execution options updated: 1.

Not in a history, so not counted: queries, activity heartbeats, rejected updates,
schedules, exports. Workflow tasks are never billed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

CONVERSATION_RUNS_MAX = 2000
HISTORY_FETCHES = 10  # at once
# Billable categories, in report order.
CATEGORIES = (
    "workflow started",
    "signal-with-start",
    "activity started",
    "activity retried",
    "local activities (per workflow task)",
    "timer started",
    "signal received",
    "search attributes upserted",
    "child workflow (start + execution)",
    "update accepted",
    "workflow options updated",
)
EXEMPT_SEARCH_ATTRIBUTES = {"TemporalChangeVersion"}
# The marker name sdk-core gives a local activity's result (a patch's is "core_patch").
LOCAL_ACTIVITY_MARKER = "core_local_activity"


def event_name(event: HistoryEvent) -> str:
    """The event type in the Web UI's spelling ("ActivityTaskScheduled")."""
    name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    return "".join(part.capitalize() for part in name.split("_"))


def in_window(event: HistoryEvent, window: tuple[datetime, datetime] | None) -> bool:
    """Whether the event happened inside the window (always, without one)."""
    if window is None:
        return True
    moment = event.event_time.ToDatetime(tzinfo=UTC)
    return window[0] <= moment <= window[1]


def billable_actions(events: Sequence[HistoryEvent]) -> Counter[str]:
    """Billable actions of one history (or a windowed part of one), by category."""
    actions: Counter[str] = Counter()
    marker_tasks: set[int] = set()
    previous = ""
    for event in events:
        name = event_name(event)
        if name == "WorkflowExecutionStarted":
            actions["workflow started"] += 1
        elif name == "WorkflowExecutionSignaled":
            if previous == "WorkflowExecutionStarted" and event.event_id == 2:
                # Signal-with-start: one action for the start and the signal together.
                actions["workflow started"] -= 1
                actions["signal-with-start"] += 1
            else:
                actions["signal received"] += 1
        elif name == "ActivityTaskScheduled":
            actions["activity started"] += 1
        elif name == "ActivityTaskStarted":
            attempt = event.activity_task_started_event_attributes.attempt
            actions["activity retried"] += max(0, attempt - 1)
        elif name == "MarkerRecorded":
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == LOCAL_ACTIVITY_MARKER:
                marker_tasks.add(marker.workflow_task_completed_event_id)
        elif name == "TimerStarted":
            actions["timer started"] += 1
        elif name == "UpsertWorkflowSearchAttributes":
            attrs = event.upsert_workflow_search_attributes_event_attributes
            keys = set(attrs.search_attributes.indexed_fields)
            if not keys or not keys <= EXEMPT_SEARCH_ATTRIBUTES:
                actions["search attributes upserted"] += 1
        elif name == "StartChildWorkflowExecutionInitiated":
            actions["child workflow (start + execution)"] += 2
        elif name == "WorkflowExecutionUpdateAccepted":
            actions["update accepted"] += 1
        elif name == "WorkflowExecutionOptionsUpdated":
            actions["workflow options updated"] += 1
        previous = name
    if marker_tasks:
        actions["local activities (per workflow task)"] += len(marker_tasks)
    return +actions  # drop zero and negative entries


def count_history(
    events: Iterable[HistoryEvent], window: tuple[datetime, datetime] | None = None
) -> tuple[Counter[str], Counter[str]]:
    """Events per type and billable actions per category, optionally inside a window."""
    kept = [e for e in events if in_window(e, window)]
    return Counter(event_name(e) for e in kept), billable_actions(kept)


def per_flow(events: Counter[str], billable: Counter[str], flows: int) -> dict[str, Any]:
    """Means per flow: history events (total and by type), billable actions (and by category)."""
    if flows == 0:
        return {"flows": 0}
    return {
        "flows": flows,
        "events": round(sum(events.values()) / flows, 2),
        "by_event": {name: round(c / flows, 2) for name, c in sorted(events.items())},
        "billable": round(sum(billable.values()) / flows, 2),
        "by_billable": {
            name: round(billable[name] / flows, 2) for name in CATEGORIES if billable[name]
        },
    }


async def histories_counts(
    client: Client, runs: Sequence[tuple[str, str | None]], window: tuple[datetime, datetime] | None
) -> tuple[Counter[str], Counter[str]]:
    """Summed events and billable actions over the given (workflow ID, run ID) histories."""
    limit = asyncio.Semaphore(HISTORY_FETCHES)

    async def one(workflow_id: str, run_id: str | None) -> tuple[Counter[str], Counter[str]]:
        async with limit:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            history = await handle.fetch_history()
        return count_history(history.events, window)

    events: Counter[str] = Counter()
    billable: Counter[str] = Counter()
    for e, b in await asyncio.gather(*(one(w, r) for w, r in runs)):
        events.update(e)
        billable.update(b)
    return events, billable


async def flows_figures(client: Client, workflow_ids: Sequence[str]) -> dict[str, Any]:
    """Per-flow means over whole histories of the given workflows (latest runs)."""
    events, billable = await histories_counts(client, [(w, None) for w in workflow_ids], None)
    return per_flow(events, billable, len(workflow_ids))


async def conversation_figures(
    client: Client, window: tuple[datetime, datetime], alerts: int
) -> dict[str, Any]:
    """Events and billable actions of ConversationWorkflow runs inside the window, per alert.

    Conversation IDs are keyed hashes of phone numbers, so the runs are found by type;
    other traffic in the same window counts too. At most CONVERSATION_RUNS_MAX runs.
    """
    runs: list[tuple[str, str | None]] = []
    async for execution in client.list_workflows("WorkflowType='ConversationWorkflow'"):
        if execution.close_time is None or execution.close_time >= window[0]:
            runs.append((execution.id, execution.run_id))
        if len(runs) >= CONVERSATION_RUNS_MAX:
            break
    events, billable = await histories_counts(client, runs, window)
    figures = per_flow(events, billable, alerts)
    figures["runs"] = len(runs)
    figures["runs_capped"] = len(runs) >= CONVERSATION_RUNS_MAX
    return figures
