"""Interaction and follow-up workflow tests: the real worker over the recording stand-ins."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import Engine
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from fiflow.domain.follow_ups import FollowUpInput, FollowUpStatus
from fiflow.domain.interactions import (
    EventType,
    InteractionChannel,
    InteractionEvent,
    InteractionInput,
    InteractionStatus,
)
from fiflow.domain.keys import follow_up_workflow_id, interaction_workflow_id
from fiflow.integrations.database import create_db_engine
from fiflow.integrations.interactions_store import InteractionRecord, InteractionStore
from fiflow.integrations.settings import Settings
from fiflow.workers.main import build_worker
from fiflow.workflows.follow_up import FollowUpWorkflow
from fiflow.workflows.interaction import InteractionWorkflow
from tests.fixtures.migrated_db import migrated_sqlite
from tests.workflows.harness import poll_async, sms_customer
from tests.workflows.standin_activities import all_activities
from tests.workflows.standins import LendingOffice

SHIPPED_RULES = Path(__file__).resolve().parents[2] / "fiflow" / "rules"


def rules_copy(tmp_path: Path, **follow_up: object) -> Path:
    """The shipped rule files in a directory of their own, with follow-up rules overridden and
    the hours limits taken off the triggers (so tests do not depend on the time of day)."""
    target = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, target)
    data = yaml.safe_load((target / "triggers.yaml").read_text())
    for trigger in data["triggers"]:
        trigger.pop("only_during", None)
    data["follow_up"].update({"business_hours": None}, **follow_up)
    (target / "triggers.yaml").write_text(yaml.safe_dump(data))
    return target


@dataclass
class InteractionHarness:
    """A worker on the time-skipping server, with the context store on SQLite."""

    env: WorkflowEnvironment
    settings: Settings
    office: LendingOffice
    store: InteractionStore
    engine: Engine | None = None  # the worker's database engine (for outages)

    @property
    def client(self) -> Client:
        return self.env.client

    def customer(self, **kw: Any) -> Any:
        customer = sms_customer(**kw)
        self.office.customers[customer.customer_id] = customer
        return customer

    async def send(
        self,
        interaction_id: str,
        customer_id: str | None,
        event_id: str,
        type_: EventType,
        channel: InteractionChannel = InteractionChannel.IVR,
        occurred_at: datetime | None = None,
        **attributes: Any,
    ) -> WorkflowHandle[Any, InteractionStatus]:
        """Deliver one event the way the API does (signal-with-start)."""
        now = datetime.now(UTC)
        await self.client.start_workflow(
            InteractionWorkflow.run,
            InteractionInput(
                interaction_id=interaction_id, customer_id=customer_id, channel=channel
            ),
            id=interaction_workflow_id(interaction_id),
            task_queue=self.settings.task_queue,
            start_signal="event",
            start_signal_args=[
                InteractionEvent(
                    event_id=event_id,
                    channel=channel,
                    type=type_,
                    attributes=attributes,
                    occurred_at=occurred_at or now,
                    accepted_at=now,
                )
            ],
        )
        # Not start_workflow's handle: awaiting that one unlocks time skipping by itself, and
        # inside `finish` the lock count would go out of balance (time would skip freely).
        return self.client.get_workflow_handle_for(
            InteractionWorkflow.run, interaction_workflow_id(interaction_id)
        )

    async def status(self, handle: WorkflowHandle[Any, Any], ok: Any) -> InteractionStatus:
        async def get() -> InteractionStatus:
            return await handle.query(InteractionWorkflow.status)

        status: InteractionStatus = await poll_async(get, ok)
        return status

    async def status_of(
        self, handle: WorkflowHandle[Any, FollowUpStatus], ok: Any
    ) -> FollowUpStatus:
        """The follow-up's status, once `ok` holds."""

        async def get() -> FollowUpStatus:
            return await handle.query(FollowUpWorkflow.status)

        status: FollowUpStatus = await poll_async(get, ok)
        return status

    async def follow_up(self, inp: FollowUpInput) -> WorkflowHandle[Any, FollowUpStatus]:
        await self.client.start_workflow(
            FollowUpWorkflow.run,
            inp,
            id=follow_up_workflow_id(inp.follow_up_id),
            task_queue=self.settings.task_queue,
        )
        return self.client.get_workflow_handle_for(
            FollowUpWorkflow.run, follow_up_workflow_id(inp.follow_up_id)
        )

    def prior(self, customer_id: str, interaction_id: str, reason: str, at: datetime) -> None:
        """An earlier interaction in the context store."""
        self.store.upsert_interaction(
            InteractionRecord(
                interaction_id=interaction_id,
                customer_id=customer_id,
                channel="ivr",
                status="closed",
                reason=reason,
                started_at=at,
                ended_at=at,
                updated_at=at,
            )
        )

    async def finish(self, handle: WorkflowHandle[Any, Any]) -> Any:
        """The result, letting the server skip time over the workflow's timers."""
        async with self.env.time_skipping_unlocked():  # type: ignore[attr-defined]
            return await handle.result()


@asynccontextmanager
async def running_interaction_harness(
    env: WorkflowEnvironment, task_queue: str, tmp_path: Path, rules_dir: Path | None = None
) -> AsyncIterator[InteractionHarness]:
    """Every workflow, with every activity the interaction flows use, over the stand-ins."""
    db_url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    migrated_sqlite(db_url)
    settings = Settings(
        task_queue=task_queue, database_url=db_url, rules_dir=rules_dir, workflow_sandbox=True
    )
    office = LendingOffice()
    engine = create_db_engine(db_url)
    store = InteractionStore(engine)
    activities = all_activities(office, env.client, settings, engine, rules_dir)
    worker = build_worker(env.client, settings, activities)
    harness = InteractionHarness(env, settings, office, store, engine)
    try:
        async with worker:
            yield harness
    finally:
        engine.dispose()
