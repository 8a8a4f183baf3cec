"""Records the histories a workflow test produced, for the replay gate (tests/replay).

Recording is deliberate: `make record-histories` runs the chosen scenarios with
FIFLOW_RECORD_HISTORIES set; the time-skipping fixture then notes every workflow the test's
client started (directly, by signal-with-start or update-with-start) and, when the test ends,
saves each one's history, its children's and the runs it continued as new from.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowHandle,
    WorkflowUpdateHandle,
)

HISTORIES = Path(__file__).parent / "histories"
ENV_VAR = "FIFLOW_RECORD_HISTORIES"


def recording() -> bool:
    """Whether this test run records histories."""
    return bool(os.environ.get(ENV_VAR))


class StartRecorder(Interceptor):
    """Notes the ID of every workflow a client starts."""

    def __init__(self) -> None:
        self.workflow_ids: list[str] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:  # noqa: A002
        """Wrap the client's outbound calls."""
        return _Outbound(next, self)


class _Outbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, recorder: StartRecorder) -> None:  # noqa: A002
        super().__init__(next)
        self._recorder = recorder

    def _note(self, workflow_id: str) -> None:
        if workflow_id not in self._recorder.workflow_ids:
            self._recorder.workflow_ids.append(workflow_id)

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:  # noqa: A002
        self._note(input.id)
        return await super().start_workflow(input)

    async def start_update_with_start_workflow(
        self,
        input: StartWorkflowUpdateWithStartInput,  # noqa: A002
    ) -> WorkflowUpdateHandle[Any]:
        self._note(input.start_workflow_input.id)
        return await super().start_update_with_start_workflow(input)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]


async def save_histories(
    client: Client, workflow_ids: list[str], test_name: str, skip_types: frozenset[str]
) -> int:
    """Save every run of every workflow the test touched; the number of histories saved.

    Workflow types in `skip_types` (stand-ins registered under a real workflow's name) are
    left out, with their descendants.
    """
    dest = HISTORIES / _safe(test_name)
    queue = [(workflow_id, None) for workflow_id in workflow_ids]
    seen: set[tuple[str, str | None]] = set()
    saved = 0
    while queue:
        workflow_id, run_id = queue.pop(0)
        if (workflow_id, run_id) in seen:
            continue
        seen.add((workflow_id, run_id))
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        first = history.events[0].workflow_execution_started_event_attributes
        if first.workflow_type.name in skip_types:
            continue
        for event in history.events:
            child = event.child_workflow_execution_started_event_attributes
            if child.workflow_execution.workflow_id:
                queue.append((child.workflow_execution.workflow_id, None))
        if first.continued_execution_run_id:
            queue.append((workflow_id, first.continued_execution_run_id))
        dest.mkdir(parents=True, exist_ok=True)
        kind = first.workflow_type.name
        path = dest / f"{saved:02d}-{kind}.json"
        body = json.loads(history.to_json())
        path.write_text(json.dumps({"workflow_id": workflow_id, "history": body}, indent=1))
        saved += 1
    return saved
