"""The worker's tuning settings (FIFLOW_WORKER_*) and what its sandbox shares between runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import temporalio.converter
import temporalio.workflow
from temporalio.api.common.v1 import Payloads
from temporalio.api.failure.v1 import Failure
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._importer import Importer
from temporalio.worker.workflow_sandbox._restrictions import RestrictionContext

import fiflow
from fiflow.integrations.settings import Settings
from fiflow.workers.main import (
    WORKFLOWS,
    build_worker,
    precompile_workflow_modules,
    worker_tuning,
    workflow_runner,
)
from fiflow.workflows.fraud_alert import FraudAlertWorkflow

TUNING_ENV = (
    "FIFLOW_WORKER_MAX_CACHED_WORKFLOWS",
    "FIFLOW_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS",
    "FIFLOW_WORKER_MAX_CONCURRENT_ACTIVITIES",
    "FIFLOW_WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES",
    "FIFLOW_WORKER_WORKFLOW_TASK_POLLS",
    "FIFLOW_WORKER_NONSTICKY_TO_STICKY_POLL_RATIO",
    "FIFLOW_WORKER_ACTIVITY_TASK_POLLS",
)


@pytest.fixture(autouse=True)
def _no_tuning_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TUNING_ENV:
        monkeypatch.delenv(name, raising=False)


def test_unset_tuning_leaves_the_sdk_defaults() -> None:
    assert worker_tuning(Settings()) == {
        "max_cached_workflows": 1000,
        "max_concurrent_activities": 200,
        "nonsticky_to_sticky_poll_ratio": 0.2,
    }


def test_tuning_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "FIFLOW_WORKER_MAX_CACHED_WORKFLOWS": "5000",
        "FIFLOW_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS": "20",
        "FIFLOW_WORKER_MAX_CONCURRENT_ACTIVITIES": "50",
        "FIFLOW_WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES": "40",
        "FIFLOW_WORKER_WORKFLOW_TASK_POLLS": "8",
        "FIFLOW_WORKER_NONSTICKY_TO_STICKY_POLL_RATIO": "0.5",
        "FIFLOW_WORKER_ACTIVITY_TASK_POLLS": "3",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    assert worker_tuning(Settings()) == {
        "max_cached_workflows": 5000,
        "max_concurrent_workflow_tasks": 20,
        "max_concurrent_activities": 50,
        "max_concurrent_local_activities": 40,
        "max_concurrent_workflow_task_polls": 8,
        "nonsticky_to_sticky_poll_ratio": 0.5,
        "max_concurrent_activity_task_polls": 3,
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FIFLOW_WORKER_MAX_CACHED_WORKFLOWS", "-1"),
        ("FIFLOW_WORKER_MAX_CACHED_WORKFLOWS", "many"),
        ("FIFLOW_WORKER_WORKFLOW_TASK_POLLS", "1"),  # a cache needs a sticky and a normal poll
        ("FIFLOW_WORKER_NONSTICKY_TO_STICKY_POLL_RATIO", "0"),
        ("FIFLOW_WORKER_NONSTICKY_TO_STICKY_POLL_RATIO", "1.5"),
        ("FIFLOW_WORKER_MAX_CONCURRENT_ACTIVITIES", "0"),
    ],
)
def test_a_bad_tuning_value_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name.removeprefix("FIFLOW_").lower()):
        Settings()


async def test_the_worker_takes_the_tuning(
    monkeypatch: pytest.MonkeyPatch, time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    monkeypatch.setenv("FIFLOW_TASK_QUEUE", task_queue)
    monkeypatch.setenv("FIFLOW_WORKER_MAX_CACHED_WORKFLOWS", "150")
    monkeypatch.setenv("FIFLOW_WORKER_WORKFLOW_TASK_POLLS", "4")
    worker = build_worker(time_skipping_env.client, Settings(), [])
    config = worker.config()
    assert config.get("max_cached_workflows") == 150
    assert config.get("max_concurrent_workflow_task_polls") == 4
    assert config.get("max_concurrent_activities") == 200
    # What a caller passes still wins (the tests build workers with their own options).
    monkeypatch.setenv("FIFLOW_TASK_QUEUE", f"{task_queue}-2")
    worker = build_worker(time_skipping_env.client, Settings(), [], max_cached_workflows=0)
    assert worker.config().get("max_cached_workflows") == 0


def test_no_workflow_module_is_passed_through_the_sandbox() -> None:
    runner = workflow_runner(Settings())
    assert isinstance(runner, SandboxedWorkflowRunner)
    importer = Importer(runner.restrictions, RestrictionContext())
    modules = {cls.__module__ for cls in WORKFLOWS} | {"fiflow", "fiflow.workflows"}
    passed = {name for name in modules if importer.module_configured_passthrough(name)}
    assert passed == set()


async def test_a_new_run_reimports_its_workflow_module_and_shares_the_domain() -> None:
    """What workflow_runner's docstring relies on: per run, only the workflow module (and
    its packages) is imported afresh; the modules it imports passed through are shared."""
    runner = workflow_runner(Settings())
    assert isinstance(runner, SandboxedWorkflowRunner)
    defn = temporalio.workflow._Definition.must_from_class(FraudAlertWorkflow)
    details = WorkflowInstanceDetails(
        payload_converter_factory=temporalio.converter.DataConverter.default._new_payload_converter,
        failure_converter_class=temporalio.converter.DataConverter.default.failure_converter_class,
        interceptor_classes=[],
        defn=defn,
        info=temporalio.worker.workflow_sandbox._runner._fake_info,
        randomness_seed=-1,
        extern_functions={},
        disable_eager_activity_execution=False,
        worker_level_failure_exception_types=[],
        patch_activation_callback=None,
        last_completion_result=Payloads(),
        last_failure=Failure(),
    )
    instance = runner.create_instance(details)
    modules = instance.importer.new_modules  # type: ignore[attr-defined]
    fresh = {
        name
        for name, module in modules.items()
        if name.startswith("fiflow") and sys.modules.get(name) is not module
    }
    assert fresh == {"fiflow", "fiflow.workflows", "fiflow.workflows.fraud_alert"}
    assert modules["fiflow.domain.alerts"] is sys.modules["fiflow.domain.alerts"]
    assert modules["fiflow.workflows.local_first"] is sys.modules["fiflow.workflows.local_first"]


def test_precompile_covers_every_module_a_new_run_imports() -> None:
    precompile_workflow_modules()
    package = Path(fiflow.__file__)
    for source in (package, package.parent / "workflows" / "fraud_alert.py"):
        assert Path(importlib.util.cache_from_source(str(source))).is_file()
