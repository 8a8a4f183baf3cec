"""The determinism gate: recorded histories must replay against today's workflow code.

Runs that are in flight when a worker is upgraded (credit reviews wait days, follow-ups
weeks) are replayed by the new code; a change that alters the commands a history already
holds fails them. `make record-histories` refreshes the recordings, deliberately, after a
change that is meant to be incompatible and is shipped with a versioning plan
(docs/architecture.md, "Changing workflows with runs in flight").
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from fiflow.workers.main import WORKFLOWS
from tests.replay.recorder import HISTORIES

RECORDED = sorted(HISTORIES.glob("*/*.json"))
REAL_TYPES = {getattr(w, "__temporal_workflow_definition").name for w in WORKFLOWS}  # noqa: B009


def load(path: Path) -> WorkflowHistory:
    """A recorded history, as the SDK's replayer takes it."""
    data = json.loads(path.read_text())
    return WorkflowHistory.from_json(data["workflow_id"], data["history"])


def test_the_recordings_cover_every_workflow_type() -> None:
    recorded = {path.stem.split("-", 1)[1] for path in RECORDED}
    assert recorded == REAL_TYPES, f"missing: {sorted(REAL_TYPES - recorded)}"


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: f"{p.parent.name}/{p.name}")
async def test_a_recorded_history_replays_against_todays_code(path: Path) -> None:
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure!r}"


# A planted incompatible change: the alert workflow as it would be if someone added a timer
# before its first step. The gate must catch it.
@workflow.defn(name="FraudAlertWorkflow")
class AlertWithAnExtraTimer:
    """Waits a second before doing what the real alert does: a new command in old histories."""

    @workflow.run
    async def run(self, _: object) -> None:
        """Sleep, then stop."""
        await workflow.sleep(timedelta(seconds=1))


async def test_the_gate_catches_a_planted_incompatible_change() -> None:
    alerts = [p for p in RECORDED if p.stem.endswith("-FraudAlertWorkflow")]
    assert alerts, "no recorded FraudAlertWorkflow history"
    # Unsandboxed: the sandbox would re-import this test module and everything it imports.
    replayer = Replayer(
        workflows=[AlertWithAnExtraTimer],
        data_converter=pydantic_data_converter,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(load(alerts[0]))
