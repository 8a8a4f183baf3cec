"""The worker's workflow runner follows FIFLOW_WORKFLOW_SANDBOX (sandboxed by default)."""

from __future__ import annotations

import pytest
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from fiflow.integrations.settings import Settings
from fiflow.workers.main import workflow_runner


def test_sandboxed_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIFLOW_WORKFLOW_SANDBOX", raising=False)
    assert isinstance(workflow_runner(Settings()), SandboxedWorkflowRunner)

    monkeypatch.setenv("FIFLOW_WORKFLOW_SANDBOX", "false")
    assert isinstance(workflow_runner(Settings()), UnsandboxedWorkflowRunner)


def test_a_value_that_is_not_a_boolean_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIFLOW_WORKFLOW_SANDBOX", "sometimes")
    with pytest.raises(ValueError, match="workflow_sandbox"):
        Settings()
