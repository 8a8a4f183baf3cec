"""Business metrics from the flows, on the time-skipping server: each fact exactly once, even
when the recording activity is retried after it wrote, and when the history is replayed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from fiflow.activities.metrics import MetricsActivities
from fiflow.domain.alerts import AlertOutcome
from fiflow.domain.follow_ups import FollowUpOutcome
from fiflow.domain.metrics import RecordMetricEvents
from fiflow.integrations.database import create_db_engine, upgrade_database
from fiflow.integrations.metrics_store import MetricsStore
from fiflow.integrations.settings import Settings
from fiflow.workers.main import WORKFLOWS, build_worker
from tests.workflows.credit_harness import CreditHarness, application
from tests.workflows.harness import Harness, alert_request, code_in, sms_customer
from tests.workflows.interaction_harness import rules_copy, running_interaction_harness
from tests.workflows.standin_activities import all_activities
from tests.workflows.standins import LendingOffice
from tests.workflows.test_credit_application import script
from tests.workflows.test_follow_ups import follow_up_input, noon_tomorrow


class WriteThenFail:
    """`record_metric_events` whose first attempt writes and then loses its answer."""

    def __init__(self, real: MetricsActivities) -> None:
        self.real = real
        self.attempts = 0

    @activity.defn(name="record_metric_events")
    async def record_metric_events(self, req: RecordMetricEvents) -> int:
        self.attempts += 1
        new = await self.real.record_metric_events(req)
        if activity.info().attempt == 1:
            raise RuntimeError("connection lost after the commit")
        return new


def _name(fn: Any) -> str:
    return getattr(fn, "__temporal_activity_definition").name  # noqa: B009


@asynccontextmanager
async def flaky_harness(
    env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> AsyncIterator[tuple[Harness, MetricsStore, WriteThenFail]]:
    db_url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(db_url)
    settings = Settings(task_queue=task_queue, database_url=db_url, workflow_sandbox=True)
    office = LendingOffice()
    engine = create_db_engine(db_url)
    store = MetricsStore(engine)
    flaky = WriteThenFail(MetricsActivities(store))
    activities = [
        a
        for a in all_activities(office, env.client, settings, engine)
        if _name(a) != "record_metric_events"
    ]
    worker = build_worker(env.client, settings, [*activities, flaky.record_metric_events])
    try:
        async with worker:
            yield Harness(env, settings, office, engine), store, flaky
    finally:
        engine.dispose()


def _labels_hold_no_personal_data(store: MetricsStore, *personal: str) -> None:
    for key, metric, labels, _ in store.events():
        text = json.dumps(labels)
        assert not any(p and p in text for p in personal), (key, metric, labels)


async def test_a_confirmed_alert_records_its_facts_once_through_a_retry_and_a_replay(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    async with flaky_harness(time_skipping_env, task_queue, tmp_path) as (h, store, flaky):
        customer = h.add(sms_customer())
        handle = await h.start(alert_request(customer))
        [alert_sms] = await h.wait_for_sms(customer.phone or "", 1)
        await h.reply(customer.phone or "", f"YES {code_in(alert_sms)}")
        result = await h.finish(handle)
        history = await handle.fetch_history()

    assert result.outcome is AlertOutcome.CONFIRM
    assert flaky.attempts == 2  # written, answer lost, retried: nothing stored twice
    wid = handle.id
    alert_type = result.alert_type
    events = {(key, metric): (labels, value) for key, metric, labels, value in store.events()}
    done = [a for a in result.actions if a.outcome in ("done", "failed")]
    assert len(events) == 3 + len(done)
    assert events[(f"{wid}:alerts_started", "alerts_started")] == (
        {"type": alert_type, "source": "alerting_system", "channel": "sms"},
        None,
    )
    assert events[(f"{wid}:alert_outcomes", "alert_outcomes")] == (
        {"type": alert_type, "outcome": "confirmed"},
        None,
    )
    labels, seconds = events[(f"{wid}:alert_reply_seconds", "alert_reply_seconds")]
    assert labels == {"type": alert_type, "channel": "sms"}
    assert seconds is not None and 0 <= seconds < 30
    actions = sorted(
        labels["action"] for (_, m), (labels, _) in events.items() if m == "alert_actions"
    )
    assert actions == sorted(a.step.split(":")[0] for a in done)
    assert "record_fraud_outcome" in actions
    _labels_hold_no_personal_data(store, customer.customer_id, customer.phone or "", "Alex")

    # One marker for the recording (its retry ran inside the same workflow task): the only
    # event metrics add to an alert's history. New runs take the alert's hot path, behind
    # its one patch marker, where metrics need no patch of their own.
    markers = [
        e.marker_recorded_event_attributes.SerializeToString()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    assert len([m for m in markers if b"record_metric_events" in m]) == 1
    assert len([m for m in markers if b"alert-hot-path" in m]) == 1
    assert not [m for m in markers if b"metrics-alert" in m]
    # Replaying the history runs no activity: still exactly these facts.
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)
    assert len(store.events()) == len(events)


async def test_a_credit_application_records_its_decision_with_its_report(
    ch: CreditHarness,
) -> None:
    customer = ch.customer()
    req = application(customer)
    script(ch, req.application_id, 780)

    result = await ch.finish(await ch.submit(req))

    store = MetricsStore(ch.reports._engine)  # noqa: SLF001 - the harness's own database
    facts = {metric: (labels, value) for _, metric, labels, value in store.events()}
    assert facts["credit_applications"] == (
        {"product": "credit_card", "decision": "approved"},
        None,
    )
    labels, seconds = facts["credit_decision_seconds"]
    assert labels == {"product": "credit_card", "decided_by": "rules"}
    assert seconds is not None and seconds >= 0
    assert "credit_reviews" not in facts  # never referred
    assert result.decision is not None
    _labels_hold_no_personal_data(store, customer.customer_id, customer.phone or "")


async def test_a_follow_up_that_gives_up_records_its_outcome_and_that_it_reached_them(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    rules = rules_copy(
        tmp_path, max_attempts=1, attempt_window="P7D", retry_after="P1D", give_up_after="P2D"
    )
    async with running_interaction_harness(time_skipping_env, task_queue, tmp_path, rules) as ih:
        customer = ih.customer()
        handle = await ih.follow_up(await follow_up_input(ih, customer, await noon_tomorrow(ih)))
        result = await ih.finish(handle)
        assert ih.engine is not None
        store = MetricsStore(ih.engine)
        facts = store.events()

    assert result.outcome is FollowUpOutcome.GAVE_UP
    assert [(key, metric, labels) for key, metric, labels, _ in facts] == [
        (f"{handle.id}:follow_ups", "follow_ups", {"outcome": "gave_up", "reached": "yes"})
    ]
