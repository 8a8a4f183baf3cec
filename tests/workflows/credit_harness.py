"""Credit workflow-test harness: fiflow's activities over recording lending-system stand-ins.

The parent's tests run CreditApplicationWorkflow with stand-in children registered under the
children's names (tests/workflows/credit_standins.py); the children's own tests run the real
children against the same stand-in systems.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from fiflow.domain.credit import (
    AccountHistoryResult,
    CallRecord,
    Consent,
    CreditApplicationRequest,
    CreditApplicationStatus,
    CreditCheckResult,
    HardPull,
    HistorySummary,
    Product,
    StatementRow,
)
from fiflow.domain.customers import Customer
from fiflow.domain.keys import credit_workflow_id
from fiflow.integrations.database import create_db_engine
from fiflow.integrations.reports import CreditReportStore
from fiflow.integrations.settings import Settings
from fiflow.starters.credit_client import start_application
from fiflow.workers.main import workflow_runner
from fiflow.workflows.account_history import AccountHistoryWorkflow
from fiflow.workflows.credit_application import CreditApplicationWorkflow
from fiflow.workflows.credit_check import CreditCheckWorkflow
from tests.fixtures.migrated_db import migrated_sqlite
from tests.workflows.credit_standins import (
    ChildScripts,
    StandInAccountHistory,
    StandInCreditCheck,
)
from tests.workflows.harness import poll_async, sms_customer
from tests.workflows.standin_activities import all_activities
from tests.workflows.standins import NOW, LendingOffice, bureau_report


def credit_result(score: int | None, *, hard: bool = True) -> CreditCheckResult:
    """A completed credit check (None: the bureau was unavailable)."""
    if score is None:
        return CreditCheckResult(
            status="bureau_unavailable", detail="bureau down", started_at=NOW, completed_at=NOW
        )
    return CreditCheckResult(
        status="completed",
        soft=bureau_report(score),
        hard=bureau_report(score, "hard") if hard else None,
        hard_pull=HardPull.DONE if hard else HardPull.NOT_REQUIRED,
        calls=[CallRecord(system="bureau", step="soft_pull", outcome="done", at=NOW)],
        started_at=NOW,
        completed_at=NOW,
    )


def history_result(
    *, returned: int = 0, overdraft_days: int = 0, tenure: int = 60
) -> AccountHistoryResult:
    """A completed account-history review."""
    return AccountHistoryResult(
        status="completed",
        summary=HistorySummary(
            customer_since=date(2020, 1, 1),
            tenure_months=tenure,
            accounts=2,
            months=12,
            statement_rows=24,
            pages=1,
            average_balance=Decimal("2500.00"),
            lowest_balance=Decimal("100.00"),
            overdraft_days=overdraft_days,
            overdraft_months=1 if overdraft_days else 0,
            returned_payments=returned,
        ),
        calls=[CallRecord(system="core_banking", step="summary", outcome="done", at=NOW)],
        started_at=NOW,
        completed_at=NOW,
    )


def statement_rows(
    accounts: int, months: int, *, returned_in: set[str] | None = None
) -> list[StatementRow]:
    """Monthly rows for `accounts` accounts over `months` months (one returned payment in
    each month listed in `returned_in`, on the first account)."""
    rows = []
    for a in range(accounts):
        for m in range(months):
            month = f"2026-{12 - months + m:02d}" if months < 12 else f"m{m:02d}"
            rows.append(
                StatementRow(
                    account_id=f"acc-{a}",
                    month=month,
                    average_balance=Decimal(1000 + 100 * m),
                    lowest_balance=Decimal(-50 if m == 3 and a == 0 else 200),
                    overdraft_days=2 if m == 3 and a == 0 else 0,
                    returned_payments=1 if a == 0 and month in (returned_in or set()) else 0,
                    deposits_total=Decimal(3000),
                )
            )
    return rows


def application(
    customer: Customer, product: Product = Product.CREDIT_CARD, **kw: Any
) -> CreditApplicationRequest:
    """A credit application from this customer."""
    base: dict[str, Any] = {
        "application_id": f"app-{uuid.uuid4().hex[:12]}",
        "customer_id": customer.customer_id,
        "product": product,
        "requested_amount": Decimal("5000.00"),
        "term_months": 36 if product is Product.PERSONAL_LOAN else None,
        "stated_monthly_income": Decimal("6000.00"),
        "consent": Consent(credit_pull=True, given_at=NOW),
    }
    return CreditApplicationRequest(**{**base, **kw})


@dataclass
class CreditHarness:
    """A worker on the time-skipping server over the lending stand-ins."""

    env: WorkflowEnvironment
    settings: Settings
    office: LendingOffice
    scripts: ChildScripts
    reports: CreditReportStore

    @property
    def client(self) -> Client:
        return self.env.client

    def customer(self, **kw: Any) -> Customer:
        customer = sms_customer(**kw)
        self.office.customers[customer.customer_id] = customer
        return customer

    async def submit(
        self, req: CreditApplicationRequest
    ) -> WorkflowHandle[Any, CreditApplicationStatus]:
        """Start an application the way the API does."""
        await start_application(self.client, self.settings, req, datetime.now(UTC))
        return self.client.get_workflow_handle_for(
            CreditApplicationWorkflow.run, credit_workflow_id(req.application_id)
        )

    async def state_is(
        self, handle: WorkflowHandle[Any, CreditApplicationStatus], state: str
    ) -> CreditApplicationStatus:
        async def get() -> CreditApplicationStatus:
            return await handle.query(CreditApplicationWorkflow.status)

        status: CreditApplicationStatus = await poll_async(get, lambda s: s.state.value == state)
        return status

    async def finish(
        self, handle: WorkflowHandle[Any, CreditApplicationStatus]
    ) -> CreditApplicationStatus:
        """The result, letting the server skip time over the application's timers."""
        async with self.env.time_skipping_unlocked():  # type: ignore[attr-defined]
            return await handle.result()


@asynccontextmanager
async def running_credit_harness(
    env: WorkflowEnvironment, task_queue: str, tmp_path: Path, *, real_children: bool = False
) -> AsyncIterator[CreditHarness]:
    """A worker for the credit workflows (stand-in children unless `real_children`)."""
    db_url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    migrated_sqlite(db_url)
    settings = Settings(task_queue=task_queue, database_url=db_url, workflow_sandbox=True)
    office = LendingOffice()
    scripts = ChildScripts()
    engine = create_db_engine(db_url)
    reports = CreditReportStore(engine)
    children: list[type] = (
        [CreditCheckWorkflow, AccountHistoryWorkflow]
        if real_children
        else [StandInCreditCheck, StandInAccountHistory]
    )
    worker = Worker(
        env.client,
        task_queue=task_queue,
        workflows=[CreditApplicationWorkflow, *children],
        activities=[
            *all_activities(office, env.client, settings, engine),
            scripts.credit_check,
            scripts.account_history,
        ],
        workflow_runner=workflow_runner(settings),
    )
    harness = CreditHarness(env, settings, office, scripts, reports)
    try:
        async with worker:
            yield harness
    finally:
        engine.dispose()
