"""The staff lists on a real dev server's visibility: filters, order, SLA, paging; and the
alert list (fraud alerts and notices) through the real API and console on that server."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
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
from fiflow.domain.notices import NoticeStatus
from fiflow.integrations.database import upgrade_database
from fiflow.integrations.settings import Settings
from fiflow.starters.api.app import create_app
from fiflow.starters.workflow_lists import (
    InvalidPageToken,
    ListedState,
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


# The stand-in workflows hold a value and wait: they run outside the sandbox, which would
# otherwise re-import this module (the API app, the database layer) for every run they start.
@workflow.defn(name="CreditApplicationWorkflow", sandboxed=False)
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


@workflow.defn(name="FraudAlertWorkflow", sandboxed=False)
class StandInAlert:
    @workflow.run
    async def run(self, _: str) -> None:
        await workflow.wait_condition(lambda: False)


@workflow.defn(name="InformationalAlertWorkflow", sandboxed=False)
class StandInNotice:
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


async def test_lists_filter_order_and_page(dev_server: WorkflowEnvironment, tmp_path: Path) -> None:
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

        # The console's review inbox: the same list, oldest first; its refresh fetches the
        # rows alone (console.js swaps them in), with the state filter kept.
        db_url = f"sqlite:///{tmp_path / 'fiflow.db'}"
        upgrade_database(db_url)
        app = create_app(Settings(database_url=db_url), client=client)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api"
        ) as api:
            form = await api.get("/console/login")
            nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
            assert nonce
            await api.post(
                "/console/login", data={"credential": "local-reviewer-1-key", "nonce": nonce[1]}
            )
            page = await api.get("/console/inbox")
            listed = re.findall(r'<tr data-application="([^"]+)"', page.text)
            assert listed == ["app-1", "app-2", "app-4"]
            assert 'data-refresh="/console/inbox?fragment=1&' in page.text
            rows = await api.get(
                "/console/inbox", params={"fragment": "1", "state": "awaiting_documents"}
            )
            assert rows.status_code == 200 and "<html" not in rows.text
            assert re.findall(r'<tr data-application="([^"]+)"', rows.text) == ["app-2"]
            stale = await api.get("/console/inbox", params={"page_token": "bm90IG91cnM="})
            assert stale.status_code == 303 and "no+longer+available" in stale.headers["location"]


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


def test_the_listed_states_are_the_alert_and_notice_states() -> None:
    assert {s.value for s in ListedState} == {s.value for s in AlertState} | {
        s.value for s in NoticeStatus
    }


async def _start(
    client: Client, queue: str, workflow_type: type, workflow_id: str, **attributes: str
) -> None:
    keys = {
        "alert_id": sa.ALERT_ID,
        "alert_type": sa.ALERT_TYPE,
        "state": sa.ALERT_STATE,
        "channel": sa.CHANNEL,
    }
    await client.start_workflow(
        workflow_type.run,  # type: ignore[attr-defined]
        "x",
        id=workflow_id,
        task_queue=queue,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(keys[k], v) for k, v in attributes.items()]
        ),
    )


async def test_the_alert_list_holds_notices_too_through_the_api_and_console(
    dev_server: WorkflowEnvironment, tmp_path: Path
) -> None:
    client = dev_server.client
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    db_url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(db_url)
    app = create_app(Settings(database_url=db_url), client=client)
    async with (
        Worker(client, task_queue=queue, workflows=[StandInAlert, StandInNotice]),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api,
    ):
        await _start(
            client, queue, StandInAlert, "alert-al-9", alert_id="al-9",
            alert_type="card_fraud_suspected", state="awaiting_reply", channel="sms",
        )  # fmt: skip
        # As the notice workflow sets them: no Channel until a message went out.
        await _start(
            client, queue, StandInNotice, "notice-nt-1", alert_id="nt-1",
            alert_type="purchase_over", state="sent", channel="push",
        )  # fmt: skip
        await _start(
            client, queue, StandInNotice, "notice-nt-2", alert_id="nt-2",
            alert_type="international", state="waiting_quiet_hours",
        )  # fmt: skip
        await _visible(client, "WorkflowType = 'InformationalAlertWorkflow'", 2)
        await _visible(client, "WorkflowType = 'FraudAlertWorkflow'", 1)
        staff = {"X-API-Key": "local-reviewer-1-key"}

        async def listed(**params: str) -> list[tuple[str, str, str | None]]:
            r = await api.get("/v1/alerts", params=params, headers=staff)
            assert r.status_code == 200, r.text
            return sorted((i["alert_id"], i["kind"], i["state"]) for i in r.json()["items"])

        assert await listed() == [
            ("al-9", "fraud_alert", "awaiting_reply"),
            ("nt-1", "notice", "sent"),
            ("nt-2", "notice", "waiting_quiet_hours"),
        ]
        assert [a for a, _, _ in await listed(kind="notice")] == ["nt-1", "nt-2"]
        assert [a for a, _, _ in await listed(kind="fraud_alert")] == ["al-9"]
        assert [a for a, _, _ in await listed(state="sent")] == ["nt-1"]
        assert await listed(kind="fraud_alert", state="sent") == []
        assert [a for a, _, _ in await listed(kind="notice", channel="push")] == ["nt-1"]
        whole = (await api.get("/v1/alerts", params={"kind": "notice"}, headers=staff)).json()
        nt1 = next(i for i in whole["items"] if i["alert_id"] == "nt-1")
        assert (nt1["alert_type"], nt1["channel"], nt1["run_status"]) == (
            "purchase_over", "push", "running",
        )  # fmt: skip
        for bad in ({"kind": "reminder"}, {"state": "delivered"}):
            r = await api.get("/v1/alerts", params=bad, headers=staff)
            assert r.status_code == 422, r.text
            assert r.json()["code"] and r.json()["message"]

        # The console's alert search: notices listed, filtered, linked to their timeline and run.
        form = await api.get("/console/login")
        nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
        assert nonce
        signed = await api.post(
            "/console/login", data={"credential": "local-reviewer-1-key", "nonce": nonce[1]}
        )
        assert signed.status_code == 303
        page = await api.get("/console/alerts", params={"kind": "notice"})
        assert page.status_code == 200
        rows = re.findall(r'<tr data-alert="([^"]+)" data-kind="([^"]+)">(.*?)</tr>', page.text)
        assert sorted((a, k) for a, k, _ in rows) == [("nt-1", "notice"), ("nt-2", "notice")]
        assert all("/workflows/notice-nt-" in row for _, _, row in rows)
        assert all(f'href="/console/notices/{a}"' in row for a, _, row in rows)  # its timeline
        every = await api.get("/console/alerts")
        kinds = dict(re.findall(r'data-alert="([^"]+)" data-kind="([^"]+)"', every.text))
        assert kinds == {"al-9": "fraud_alert", "nt-1": "notice", "nt-2": "notice"}
        assert 'href="/console/alerts/al-9"' in every.text  # a fraud alert has its timeline
        for params, expected in (
            ({"channel": "push"}, {"nt-1"}),
            ({"state": "waiting_quiet_hours"}, {"nt-2"}),
            ({"type": "card_fraud_suspected"}, {"al-9"}),
            ({"from": "2000-01-01", "to": "2000-01-02"}, set()),
        ):
            found = await api.get("/console/alerts", params=params)
            assert set(re.findall(r'data-alert="([^"]+)"', found.text)) == expected, params
        wrong = await api.get("/console/alerts", params={"kind": "reminder"})
        assert wrong.status_code == 200 and "Cannot search with that filter" in wrong.text
