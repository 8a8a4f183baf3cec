"""The workflow tests' fixture: a worker with fiflow's activities over stand-in systems."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.workflows.harness import Harness, running_harness


@pytest.fixture
async def h(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> AsyncIterator[Harness]:
    async with running_harness(time_skipping_env, task_queue, tmp_path) as harness:
        yield harness
