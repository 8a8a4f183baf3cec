"""Credit workflow-test harness: fiflow's activities over recording lending-system stand-ins.

The parent's tests run CreditApplicationWorkflow with stand-in children registered under the
children's names (tests/workflows/credit_standins.py); the children's own tests run the real
children against the same stand-in systems.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from fiflow.activities.backoffice import CrmActivities
from fiflow.activities.credit import BillingActivities, BureauActivities, CoreBankingActivities
from fiflow.activities.messaging import MessagingActivities
from fiflow.activities.reports import ReportActivities
from fiflow.activities.rules import RuleActivities
from fiflow.domain.alerts import Transaction
from fiflow.domain.credit import (
    AccountHistoryResult,
    BureauReport,
    CallRecord,
    Consent,
    CreditApplicationRequest,
    CreditApplicationStatus,
    CreditCheckResult,
    CustomerSummary,
    HardPull,
    HistorySummary,
    Product,
    StatementPage,
    StatementRow,
)
from fiflow.domain.customers import Customer
from fiflow.domain.follow_ups import Ticket
from fiflow.domain.keys import credit_workflow_id
from fiflow.integrations.database import create_db_engine, upgrade_database
from fiflow.integrations.http import BusinessError
from fiflow.integrations.optouts import OptOutStore
from fiflow.integrations.reports import CreditReportStore
from fiflow.integrations.rules_store import RuleStore
from fiflow.integrations.settings import Settings
from fiflow.starters.credit_client import start_application
from fiflow.workers.main import workflow_runner
from fiflow.workflows.account_history import AccountHistoryWorkflow
from fiflow.workflows.credit_application import CreditApplicationWorkflow
from fiflow.workflows.credit_check import CreditCheckWorkflow
from tests.workflows.credit_standins import (
    ChildScripts,
    StandInAccountHistory,
    StandInCreditCheck,
)
from tests.workflows.harness import Backoffice, poll_async, sms_customer

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def bureau_report(score: int, kind: str = "soft", debt: str = "400") -> BureauReport:
    """A bureau answer with this score."""
    return BureauReport(
        pull_id=f"pull-{uuid.uuid4().hex[:8]}",
        kind=kind,  # type: ignore[arg-type]
        score=score,
        monthly_debt_payments=Decimal(debt),
        open_tradelines=4,
        delinquencies_24m=0,
        recent_inquiries=1,
        pulled_at=NOW,
    )


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


@dataclass
class LendingOffice(Backoffice):
    """Adds the credit bureau, core banking and billing to the recording stand-ins."""

    scores: dict[str, int] = field(default_factory=dict)
    pulls: list[tuple[str, str]] = field(default_factory=list)  # (kind, key), effective only
    pull_attempts: int = 0
    summaries: dict[str, CustomerSummary] = field(default_factory=dict)
    rows: dict[str, list[StatementRow]] = field(default_factory=dict)
    page_requests: list[str | None] = field(default_factory=list)
    accounts: dict[str, str] = field(default_factory=dict)  # account id -> status
    billing: dict[str, str] = field(default_factory=dict)  # billing account id -> status
    schedules: list[dict[str, Any]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # "system.method" refused for good
    _answers: dict[str, Any] = field(default_factory=dict)

    def _refused(self, what: str) -> None:
        if what in self.refuse:
            raise BusinessError(
                what.split(".")[0], f"HTTP 422 {what} refused", status=422, code="refused"
            )

    def _once(self, key: str, make: Any) -> Any:
        """The first answer per idempotency key, like the real systems."""
        if key not in self._answers:
            self._answers[key] = make()
        return self._answers[key]

    # bureau
    async def pull(
        self, customer_id: str, kind: str, purpose: str, reference: str, key: str
    ) -> BureauReport:
        self.pull_attempts += 1
        self._maybe_fail("bureau")

        def make() -> BureauReport:
            self.pulls.append((kind, key))
            return bureau_report(self.scores.get(customer_id, 700), kind)

        report: BureauReport = self._once(key, make)
        return report

    # core banking
    async def summary(self, customer_id: str) -> CustomerSummary:
        self._maybe_fail("core_banking")
        return self.summaries[customer_id]

    async def statements(
        self, customer_id: str, months: int, limit: int, cursor: str | None
    ) -> StatementPage:
        self._maybe_fail("core_banking")
        self.page_requests.append(cursor)
        rows = self.rows[customer_id]
        start = int(cursor or 0)
        nxt = start + limit
        return StatementPage(
            items=rows[start:nxt], next_cursor=str(nxt) if nxt < len(rows) else None
        )

    async def open_account(
        self, customer_id: str, product: str, amount: Decimal, reference: str, key: str
    ) -> str:
        self._maybe_fail("core_banking")
        self._refused("core_banking.open_account")

        def make() -> str:
            account_id = f"acct-{len(self.accounts) + 1}"
            self.accounts[account_id] = "open"
            return account_id

        account: str = self._once(key, make)
        return account

    async def close_account(self, account_id: str, reason: str, key: str) -> str:
        self._maybe_fail("core_banking")
        self.accounts[account_id] = "closed"
        return "closed"

    # billing
    async def create_account(
        self, customer_id: str, core_account_id: str, product: str, reference: str, key: str
    ) -> str:
        self._maybe_fail("billing")
        self._refused("billing.create_account")

        def make() -> str:
            billing_id = f"bill-{len(self.billing) + 1}"
            self.billing[billing_id] = "active"
            return billing_id

        billing: str = self._once(key, make)
        return billing

    async def add_schedule(
        self,
        billing_account_id: str,
        kind: str,
        day_of_month: int,
        amount: Decimal | None,
        key: str,
    ) -> str:
        self._maybe_fail("billing")
        self._refused("billing.add_schedule")

        def make() -> str:
            self.schedules.append(
                {"billing": billing_account_id, "kind": kind, "day": day_of_month, "amount": amount}
            )
            return f"sched-{len(self.schedules)}"

        schedule: str = self._once(key, make)
        return schedule

    async def cancel_account(self, billing_account_id: str, reason: str, key: str) -> str:
        self._maybe_fail("billing")
        self.billing[billing_account_id] = "cancelled"
        return "cancelled"

    # CRM tickets
    tickets: dict[str, Ticket] = field(default_factory=dict)
    transactions: dict[str, list[Transaction]] = field(default_factory=dict)

    async def create_ticket(
        self, customer_id: str, subject: str, category: str, description: str, key: str
    ) -> Ticket:
        self._maybe_fail("crm")

        def make() -> Ticket:
            ticket = Ticket(
                ticket_id=f"tkt-{len(self.tickets) + 1}",
                customer_id=customer_id,
                subject=subject,
                category=category,
                status="open",
            )
            self.tickets[ticket.ticket_id] = ticket
            return ticket

        ticket: Ticket = self._once(key, make)
        return ticket

    async def get_ticket(self, ticket_id: str) -> Ticket:
        self._maybe_fail("crm")
        if ticket_id not in self.tickets:
            raise BusinessError("crm", "HTTP 404 no ticket", status=404, code="ticket_not_found")
        return self.tickets[ticket_id]

    def resolve(self, ticket_id: str) -> None:
        """An agent resolves the ticket in the CRM."""
        self.tickets[ticket_id] = self.tickets[ticket_id].model_copy(update={"status": "resolved"})

    async def latest_transaction(
        self, customer_id: str, card_last4: str | None
    ) -> Transaction | None:
        self._maybe_fail("core_banking")
        txns = [
            t
            for t in self.transactions.get(customer_id, [])
            if card_last4 is None or t.card_last4 == card_last4
        ]
        return txns[0] if txns else None

    def notes(self) -> list[str]:
        """CRM note texts, oldest first."""
        return [c.body["text"] for c in self.of("crm")]


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
    upgrade_database(db_url)
    settings = Settings(task_queue=task_queue, database_url=db_url, workflow_sandbox=True)
    office = LendingOffice()
    scripts = ChildScripts()
    engine = create_db_engine(db_url)
    reports = CreditReportStore(engine)
    messaging = MessagingActivities(
        office,  # type: ignore[arg-type]
        office,  # type: ignore[arg-type]
        OptOutStore(engine),
        settings.address_hash_key,
    )
    crm = CrmActivities(office)  # type: ignore[arg-type]
    core = CoreBankingActivities(office)  # type: ignore[arg-type]
    billing = BillingActivities(office)  # type: ignore[arg-type]
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
            RuleActivities(RuleStore(None)).load_credit_rules,
            crm.get_customer,
            crm.add_note,
            messaging.send_sms,
            messaging.send_push,
            BureauActivities(office).pull,  # type: ignore[arg-type]
            core.summary,
            core.statement_page,
            core.open_account,
            core.close_account,
            billing.create_account,
            billing.add_schedule,
            billing.cancel_account,
            ReportActivities(reports).store_credit_report,
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
