"""The staff lists on a real dev server's visibility: filters, order, SLA, paging."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from fiflow.domain import search_attributes as sa
from fiflow.domain.alerts import AlertState
from fiflow.domain.credit import (
    ApplicationState,
    ChildStatus,
    CreditApplicationStatus,
    Decision,
    DocumentsRecord,
    Product,
    ReviewDecision,
    ReviewRecord,
)
from fiflow.domain.credit_rules import ReviewRules
from fiflow.starters.workflow_lists import (
    InvalidPageToken,
    list_alerts,
    list_applications,
    review_due_at,
)
from tests.fixtures.temporal import venv_binary

REVIEW = ReviewRules(
    reminder_after=timedelta(hours=4),
    deadline=timedelta(hours=24),
    on_deadline="escalate",
    escalation_grace=timedelta(hours=12),
    documents_deadline=timedelta(days=3),
)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _status(app_id: str, state: ApplicationState) -> CreditApplicationStatus:
    return CreditApplicationStatus(
        application_id=app_id,
        customer_id="cust-1",
        product=Product.CREDIT_CARD,
        requested_amount=Decimal("5000.00"),
        state=state,
        rule_set_version="r1",
        credit_check=ChildStatus(workflow_id="cc"),
        account_history=ChildStatus(workflow_id="ah"),
        timings={"received": T0, "referred": T0 + timedelta(minutes=5)},
    )


@workflow.defn(name="CreditApplicationWorkflow")
class StandInApplication:
    """Holds a status for the query until cancelled."""

    def __init__(self) -> None:
        self._status: CreditApplicationStatus | None = None

    @workflow.run
    async def run(self, status: CreditApplicationStatus) -> None:
        self._status = status
        await workflow.wait_condition(lambda: False)

    @workflow.query(name="status")
    def status(self) -> CreditApplicationStatus:
        assert self._status is not None
        return self._status


@workflow.defn(name="FraudAlertWorkflow")
class StandInAlert:
    @workflow.run
    async def run(self, _: str) -> None:
        await workflow.wait_condition(lambda: False)


@pytest.fixture
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
        search_attributes=list(sa.ALL),
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def _visible(client: Client, query: str, count: int) -> None:
    for _ in range(100):
        if (await client.count_workflows(query)).count >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"visibility never showed {count} for {query}")


async def _rules(_version: str | None) -> ReviewRules:
    return REVIEW


async def test_lists_filter_order_and_page(dev_server: WorkflowEnvironment) -> None:
    client = dev_server.client
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[StandInApplication, StandInAlert]):
        apps = [
            ("app-1", ApplicationState.AWAITING_REVIEW, Decision.REFERRED),
            ("app-2", ApplicationState.AWAITING_DOCUMENTS, Decision.REFERRED),
            ("app-3", ApplicationState.CHECKING, Decision.PENDING),
            ("app-4", ApplicationState.AWAITING_REVIEW, Decision.REFERRED),
        ]
        for app_id, app_state, decision in apps:
            status = _status(app_id, app_state)
            if app_state is ApplicationState.AWAITING_DOCUMENTS:
                status.reviews.append(
                    ReviewRecord(
                        decision=ReviewDecision.REQUEST_INFO, reviewer_id="r-1", note="", at=T0
                    )
                )
            await client.start_workflow(
                StandInApplication.run,
                status,
                id=f"credit-{app_id}",
                task_queue=queue,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(sa.APPLICATION_ID, app_id),
                        SearchAttributePair(sa.PRODUCT, "credit_card"),
                        SearchAttributePair(sa.DECISION, decision.value),
                    ]
                ),
            )
        for n, (state, channel) in enumerate(
            [(AlertState.AWAITING_REPLY, "sms"), (AlertState.CONFIRMED, "push")]
        ):
            await client.start_workflow(
                StandInAlert.run,
                "x",
                id=f"alert-al-{n}",
                task_queue=queue,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(sa.ALERT_ID, f"al-{n}"),
                        SearchAttributePair(sa.ALERT_TYPE, "card_fraud_suspected"),
                        SearchAttributePair(sa.ALERT_STATE, state.value),
                        SearchAttributePair(sa.CHANNEL, channel),
                    ]
                ),
            )
        await _visible(client, "WorkflowType = 'CreditApplicationWorkflow'", 4)
        await _visible(client, "WorkflowType = 'FraudAlertWorkflow'", 2)

        inbox = await list_applications(client, review_rules_for=_rules)
        assert [i.application_id for i in inbox.items] == ["app-1", "app-2", "app-4"]
        assert [i.state for i in inbox.items] == [
            "awaiting_review",
            "awaiting_documents",
            "awaiting_review",
        ]
        assert inbox.items[0].review_due_at == T0 + timedelta(minutes=5, hours=24)
        assert inbox.items[1].review_due_at == T0 + timedelta(days=3)
        assert inbox.items[0].run_status == "running"
        assert inbox.next_page_token is None

        first = await list_applications(client, limit=2)
        assert [i.application_id for i in first.items] == ["app-1", "app-2"]
        assert first.next_page_token is not None
        second = await list_applications(client, limit=2, page_token=first.next_page_token)
        assert [i.application_id for i in second.items] == ["app-4"]

        only_docs = await list_applications(client, [ApplicationState.AWAITING_DOCUMENTS])
        assert [i.application_id for i in only_docs.items] == ["app-2"]
        checking = await list_applications(client, [ApplicationState.CHECKING])
        assert [i.application_id for i in checking.items] == ["app-3"]

        with pytest.raises(InvalidPageToken):
            await list_applications(client, page_token="bm90IG91cnM=")

        alerts = await list_alerts(client)
        assert {a.alert_id for a in alerts.items} == {"al-0", "al-1"}
        sms = await list_alerts(client, channel="sms", state=AlertState.AWAITING_REPLY)
        assert [(a.alert_id, a.alert_type, a.channel) for a in sms.items] == [
            ("al-0", "card_fraud_suspected", "sms")
        ]
        paged = await list_alerts(client, limit=1)
        assert len(paged.items) == 1 and paged.next_page_token
        rest = await list_alerts(client, limit=1, page_token=paged.next_page_token)
        assert {paged.items[0].alert_id, rest.items[0].alert_id} == {"al-0", "al-1"}
        future = await list_alerts(client, started_from=datetime.now(UTC) + timedelta(days=1))
        assert future.items == []


def test_review_due_follows_the_workflows_clock() -> None:
    status = _status("a", ApplicationState.AWAITING_REVIEW)
    assert review_due_at(status, REVIEW) == T0 + timedelta(minutes=5, hours=24)
    status.path = ["review reminder sent", "review escalated"]
    assert review_due_at(status, REVIEW) == T0 + timedelta(minutes=5, hours=36)
    # After documents, the clock restarts from them, and the old escalation no longer counts.
    status.path += ["documents received"]
    status.documents.append(
        DocumentsRecord(submission_id="s1", documents=[], at=T0 + timedelta(days=1))
    )
    assert review_due_at(status, REVIEW) == T0 + timedelta(days=1, hours=24)
    assert review_due_at(status, None) is None
