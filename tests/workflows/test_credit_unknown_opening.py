"""An account opening whose answer is lost is compensated too (time-skipping server).

Core banking and billing here are the sandbox's real HTTP API (in process), called by
fiflow's real clients and activities; the network between them loses answers on demand:
the request reaches core banking and takes effect, and the caller gets a read timeout. The
other systems and the application's children are the usual stand-ins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from fiflow.activities.credit import BillingActivities, CoreBankingActivities
from fiflow.domain.credit import ApplicationState, CreditApplicationStatus
from fiflow.domain.keys import credit_workflow_id
from fiflow.integrations.billing import BillingClient
from fiflow.integrations.core_banking import CoreBankingClient
from fiflow.integrations.database import create_db_engine, upgrade_database
from fiflow.integrations.reports import CreditReportStore
from fiflow.integrations.settings import Settings
from fiflow.sandbox.app import create_app
from fiflow.workers.main import workflow_runner
from fiflow.workflows.credit_application import CreditApplicationWorkflow
from tests.workflows.credit_harness import (
    CreditHarness,
    application,
    credit_result,
    history_result,
)
from tests.workflows.credit_standins import (
    STAND_IN_TYPES,
    ChildScripts,
    ScriptedCredit,
    ScriptedHistory,
    StandInAccountHistory,
    StandInCreditCheck,
)
from tests.workflows.standin_activities import all_activities
from tests.workflows.standins import LendingOffice

CUSTOMER = "cust-0001"  # seeded in the sandbox's core banking


class LosesAnswers(httpx.AsyncBaseTransport):
    """Delivers every request; drops the answer to the first `times` openings (None: all)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.times: int | None = 0
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        opening = request.method == "POST" and request.url.path == "/core-banking/accounts"
        if opening and (self.times is None or self.lost < self.times):
            await response.aread()
            self.lost += 1
            raise httpx.ReadTimeout("the answer never came", request=request)
        return response


class Sandbox:
    """The in-process sandbox and the lossy network to its core banking."""

    def __init__(self) -> None:
        self.app: FastAPI = create_app()
        self.network = LosesAnswers(httpx.ASGITransport(app=self.app))
        self.inspect = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://sandbox"
        )

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.network, base_url="http://sandbox", timeout=5)

    async def accounts(self) -> list[dict[str, Any]]:
        response = await self.inspect.get(
            "/__sandbox/core-banking/accounts", params={"customer_id": CUSTOMER}
        )
        assert response.status_code == 200
        result: list[dict[str, Any]] = response.json()
        return result

    async def calls(self, system: str) -> list[tuple[str, str, int, bool]]:
        """(method, path, status, replayed) of each recorded call to the system."""
        response = await self.inspect.get("/__sandbox/calls", params={"system": system})
        return [(c["method"], c["path"], c["status_code"], c["replayed"]) for c in response.json()]

    async def fault(self, **fault: Any) -> None:
        response = await self.inspect.post("/__sandbox/faults", json=fault)
        assert response.status_code == 200, response.text


def _name(fn: Callable[..., Any]) -> str:
    return str(fn.__temporal_activity_definition.name)  # type: ignore[attr-defined]


@asynccontextmanager
async def harness_over_sandbox(
    env: WorkflowEnvironment, task_queue: str, tmp_path: Path, sandbox: Sandbox
) -> AsyncIterator[CreditHarness]:
    """The credit harness, with core banking and billing answered by the sandbox."""
    db_url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(db_url)
    settings = Settings(task_queue=task_queue, database_url=db_url, workflow_sandbox=True)
    office, scripts = LendingOffice(), ChildScripts()
    engine = create_db_engine(db_url)
    async with sandbox.client() as core_http, sandbox.client() as billing_http:
        core = CoreBankingActivities(CoreBankingClient(core_http))
        billing = BillingActivities(BillingClient(billing_http))
        real: list[Callable[..., Any]] = [
            core.open_account,
            core.find_account,
            core.close_account,
            billing.create_account,
            billing.add_schedule,
            billing.cancel_account,
        ]
        replaced = {_name(fn) for fn in real}
        activities: list[Callable[..., Any]] = [
            *(a for a in all_activities(office, env.client, settings, engine)
              if _name(a) not in replaced),
            *real,
            scripts.credit_check,
            scripts.account_history,
        ]  # fmt: skip
        worker = Worker(
            env.client,
            task_queue=task_queue,
            workflows=[CreditApplicationWorkflow, StandInCreditCheck, StandInAccountHistory],
            activities=activities,
            workflow_runner=workflow_runner(settings),
        )
        try:
            async with worker:
                yield CreditHarness(env, settings, office, scripts, CreditReportStore(engine))
        finally:
            engine.dispose()
            await sandbox.inspect.aclose()


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox()


@pytest.fixture
async def sh(
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    tmp_path: Path,
    sandbox: Sandbox,
    request: pytest.FixtureRequest,
) -> AsyncIterator[CreditHarness]:
    # Stand-in children run under the real children's names: not recordings of the real code.
    request.node.replay_skip_types = STAND_IN_TYPES
    async with harness_over_sandbox(time_skipping_env, task_queue, tmp_path, sandbox) as h:
        yield h


async def approved_application(sh: CreditHarness) -> CreditApplicationStatus:
    """Submit a strong application (rules approve it) and run it to its end."""
    customer = sh.customer(customer_id=CUSTOMER)
    req = application(customer)
    sh.scripts.credit[req.application_id] = ScriptedCredit(result=credit_result(780))
    sh.scripts.history[req.application_id] = ScriptedHistory(result=history_result())
    return await sh.finish(await sh.submit(req))


async def replays(sh: CreditHarness, result: CreditApplicationStatus) -> None:
    """The run's own history replays against the code that wrote it (the patched path)."""
    handle = sh.client.get_workflow_handle(credit_workflow_id(result.application_id))
    replayer = Replayer(
        workflows=[CreditApplicationWorkflow, StandInCreditCheck, StandInAccountHistory],
        data_converter=pydantic_data_converter,
    )
    await replayer.replay_workflow(await handle.fetch_history())


def steps(result: CreditApplicationStatus, system: str) -> list[tuple[str, str]]:
    return [(c.step, c.outcome) for c in result.calls if c.system == system]


async def test_an_opening_that_timed_out_after_the_write_is_found_by_its_key_and_closed(
    sh: CreditHarness, sandbox: Sandbox
) -> None:
    sandbox.network.times = None  # every answer to the opening is lost

    result = await approved_application(sh)

    assert result.state is ApplicationState.FAILED
    assert result.failure is not None and result.failure.startswith("open_account")
    # Core banking did open it (the first attempt); the retries were replays of that one.
    [account] = await sandbox.accounts()
    assert account["status"] == "closed" and account["close_reason"] == "application_failed"
    assert sandbox.network.lost > 1
    assert result.account.core_account_id == account["account_id"]
    calls = await sandbox.calls("core_banking")
    opens = [c for c in calls if c[0] == "POST" and c[1] == "/core-banking/accounts"]
    assert [c[3] for c in opens] == [False] + [True] * (len(opens) - 1)
    assert [c for c in calls if c[0] == "GET"] == [("GET", "/core-banking/accounts", 200, False)]
    close_path = f"/core-banking/accounts/{account['account_id']}/close"
    assert [c for c in calls if c[1] == close_path] == [("POST", close_path, 200, False)]
    assert steps(result, "core_banking") == [
        ("open_account", "failed"),
        ("find_account", "done"),
        ("close_account", "done"),
    ]
    assert result.path[-3:-1] == [
        "the failed opening did open an account",
        "compensated: close_account",
    ]
    assert await sandbox.calls("billing") == []  # fulfilment stopped at the opening
    [sms] = sh.office.sms_to(sh.office.customers[CUSTOMER].phone or "")
    assert "couldn't finish" in sms
    await replays(sh, result)


async def test_an_opening_that_took_no_effect_closes_nothing(
    sh: CreditHarness, sandbox: Sandbox
) -> None:
    # Refused before any write (a business error: the step fails at once).
    await sandbox.fault(system="core_banking", status_code=422, remaining=1)

    result = await approved_application(sh)

    assert result.state is ApplicationState.FAILED
    assert await sandbox.accounts() == []
    assert steps(result, "core_banking") == [("open_account", "failed"), ("find_account", "done")]
    assert not [c for c in await sandbox.calls("core_banking") if c[1].endswith("/close")]
    assert "the failed opening opened no account" in result.path
    assert "compensated: close_account" not in result.path
    assert result.account.core_account_id is None
    await replays(sh, result)


async def test_a_lost_answer_then_a_billing_failure_closes_the_account_once(
    sh: CreditHarness, sandbox: Sandbox
) -> None:
    sandbox.network.times = 1  # the retry's replay gets through: the account ID is known
    await sandbox.fault(system="billing", status_code=422)  # billing refuses

    result = await approved_application(sh)

    assert result.state is ApplicationState.FAILED
    assert result.failure is not None and "create_billing_account" in result.failure
    [account] = await sandbox.accounts()
    assert account["status"] == "closed"
    assert result.account.core_account_id == account["account_id"]
    calls = await sandbox.calls("core_banking")
    assert [c[1:] for c in calls] == [
        ("/core-banking/accounts", 201, False),  # opened; its answer lost
        ("/core-banking/accounts", 201, True),  # the retry: a replay
        (f"/core-banking/accounts/{account['account_id']}/close", 200, False),
    ]
    assert steps(result, "core_banking") == [
        ("open_account", "compensated"),
        ("close_account", "done"),
    ]


async def test_the_normal_path_is_unchanged(sh: CreditHarness, sandbox: Sandbox) -> None:
    result = await approved_application(sh)

    assert result.state is ApplicationState.APPROVED
    [account] = await sandbox.accounts()
    assert account["status"] == "open" and result.account.core_account_id == account["account_id"]
    assert [c[:2] for c in await sandbox.calls("core_banking")] == [
        ("POST", "/core-banking/accounts")
    ]
    assert steps(result, "core_banking") == [("open_account", "done")]
    assert [c[:3] for c in await sandbox.calls("billing")][0][2] == 201
