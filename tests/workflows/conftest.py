"""The workflow tests' fixture: a worker with fiflow's activities over stand-in systems."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.workflows.credit_harness import CreditHarness, running_credit_harness
from tests.workflows.credit_standins import STAND_IN_TYPES
from tests.workflows.harness import Harness, running_harness
from tests.workflows.interaction_harness import (
    InteractionHarness,
    rules_copy,
    running_interaction_harness,
)


@pytest.fixture
async def h(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> AsyncIterator[Harness]:
    async with running_harness(time_skipping_env, task_queue, tmp_path) as harness:
        yield harness


@pytest.fixture
async def ch(
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[CreditHarness]:
    """Credit workflows with stand-in children."""
    # Stand-ins run under the children's names: their histories are not the real code's.
    request.node.replay_skip_types = STAND_IN_TYPES
    async with running_credit_harness(time_skipping_env, task_queue, tmp_path) as harness:
        yield harness


@pytest.fixture
async def children(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> AsyncIterator[CreditHarness]:
    """Credit workflows with the real children."""
    async with running_credit_harness(
        time_skipping_env, task_queue, tmp_path, real_children=True
    ) as harness:
        yield harness


@pytest.fixture
async def ih(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> AsyncIterator[InteractionHarness]:
    """Interaction and follow-up workflows, with day-and-night business hours."""
    async with running_interaction_harness(
        time_skipping_env, task_queue, tmp_path, rules_copy(tmp_path)
    ) as harness:
        yield harness
