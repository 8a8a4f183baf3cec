"""RetentionWorkflow on the time-skipping server, over the real stores on SQLite."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from fiflow.activities.retention import RetentionActivities
from fiflow.domain.retention import RetentionInput
from fiflow.integrations.settings import Settings
from fiflow.workers.main import build_worker
from fiflow.workflows.retention import RetentionWorkflow
from tests.fixtures.retention import seeded_stores


async def test_a_retention_pass_deletes_only_what_expired(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    # The workflow measures retention from its own clock: the test server's.
    url, engine, ledger, interactions = seeded_stores(
        tmp_path,
        messages={"SM1": timedelta(days=40), "SM2": timedelta(days=20), "SM3": timedelta(days=1)},
        events={"ev1": timedelta(days=15), "ev2": timedelta(days=5)},
        interaction_id="int-9",
    )
    retention = RetentionActivities(ledger, interactions)
    settings = Settings(task_queue=task_queue, database_url=url)
    worker = build_worker(
        time_skipping_env.client,
        settings,
        [retention.purge_message_ledger, retention.purge_interaction_events],
    )
    async with worker:
        result = await time_skipping_env.client.execute_workflow(
            RetentionWorkflow.run,
            RetentionInput(
                message_ledger=timedelta(days=30), interaction_events=timedelta(days=10)
            ),
            id="retention-test",
            task_queue=task_queue,
        )
    assert (result.message_ledger, result.interaction_events) == (1, 1)
    assert [ledger.seen(s) for s in ("SM1", "SM2", "SM3")] == [False, True, True]
    assert [e.event_id for e in interactions.events("int-9")] == ["ev2"]
    engine.dispose()
