"""The status endpoints answer audit records in their one shape and, for API v1 clients, under
their older names too, also for a run whose stored result still has only the older names.

The real API app over ASGI; only the Temporal reads are stood in (they return what the data
converter decodes from a run's result)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from temporalio.client import Client

from fiflow.domain.alerts import AlertStatus
from fiflow.domain.credit import (
    ApplicationState,
    CallRecord,
    ChildStatus,
    CreditApplicationStatus,
    Product,
)
from fiflow.domain.follow_ups import FollowUpStatus
from fiflow.integrations.database import upgrade_database
from fiflow.integrations.settings import Settings
from fiflow.starters.api import alerts, credit, follow_ups
from fiflow.starters.api.app import create_app
from fiflow.starters.workflow_views import Lookup, View

AT = "2026-01-05T12:00:00Z"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SYSTEM = {"X-API-Key": "local-system-key"}
REVIEWER = {"X-API-Key": "local-reviewer-key"}

# A completed alert's and follow-up's results as runs before the shared shape stored them.
OLD_ALERT = {
    "alert_id": "al-old", "alert_type": "card_fraud_suspected", "customer_id": "cust-A",
    "state": "contested",
    "actions": [
        {"action": "block_card:contest", "status": "done", "detail": "card 4242", "at": AT}
    ],
}  # fmt: skip
OLD_FOLLOW_UP = {
    "follow_up_id": "fu-old", "customer_id": "cust-A", "ticket_id": "t-1", "reason": "card",
    "follow_up_at": AT, "attempts": [{"at": AT, "channel": "sms", "outcome": "sent"}],
}  # fmt: skip


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(url)
    application = CreditApplicationStatus(
        application_id="app-1", customer_id="cust-A", product=Product.CREDIT_CARD,
        requested_amount=Decimal("5000.00"), state=ApplicationState.APPROVED,
        credit_check=ChildStatus(workflow_id="cc", state="completed"),
        account_history=ChildStatus(workflow_id="ah", state="completed"),
        calls=[CallRecord(system="bureau", step="soft_pull", idempotency_key="credit-app-1:soft",
                          outcome="done", detail="score 712", at=NOW)],
    )  # fmt: skip

    async def alert_view(_client: Any, alert_id: str) -> View[AlertStatus]:
        status = AlertStatus.model_validate(OLD_ALERT | {"alert_id": alert_id})
        return View(Lookup.RUNNING, status, "completed")

    async def follow_up_view(_client: Any, fid: str) -> View[FollowUpStatus]:
        status = FollowUpStatus.model_validate(OLD_FOLLOW_UP | {"follow_up_id": fid})
        return View(Lookup.RUNNING, status, "completed")

    async def application_view(_client: Any, _app_id: str) -> View[CreditApplicationStatus]:
        return View(Lookup.RUNNING, application, "completed")

    monkeypatch.setattr(alerts, "alert_view", alert_view)
    monkeypatch.setattr(follow_ups, "follow_up_view", follow_up_view)
    monkeypatch.setattr(credit, "application_view", application_view)
    app = create_app(Settings(database_url=url), client=cast(Client, object()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def test_an_alerts_actions_have_the_uniform_fields_and_the_v1_names(
    api: httpx.AsyncClient,
) -> None:
    r = await api.get("/v1/alerts/al-old", headers=SYSTEM)
    assert r.status_code == 200, r.text
    [action] = r.json()["status"]["actions"]
    assert action == {
        "step": "block_card:contest", "outcome": "done", "detail": "card 4242", "at": AT,
        "system": None, "idempotency_key": None,
        "action": "block_card:contest", "status": "done",  # API v1, deprecated
    }  # fmt: skip


async def test_a_follow_ups_attempts_have_the_uniform_fields_and_the_v1_channel(
    api: httpx.AsyncClient,
) -> None:
    r = await api.get("/v1/follow-ups/fu-old", headers=SYSTEM)
    assert r.status_code == 200, r.text
    [attempt] = r.json()["status"]["attempts"]
    assert attempt == {
        "step": "sms", "outcome": "sent", "detail": "", "at": AT,
        "system": None, "idempotency_key": None,
        "channel": "sms",  # API v1, deprecated
    }  # fmt: skip


async def test_an_applications_calls_keep_their_fields(api: httpx.AsyncClient) -> None:
    r = await api.get("/v1/credit-applications/app-1", headers=REVIEWER)
    assert r.status_code == 200, r.text
    assert r.json()["status"]["calls"] == [
        {
            "step": "soft_pull", "outcome": "done", "detail": "score 712", "at": AT,
            "system": "bureau", "idempotency_key": "credit-app-1:soft",
        }
    ]  # fmt: skip
