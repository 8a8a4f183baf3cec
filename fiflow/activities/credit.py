"""Activities over the lending systems: credit bureau, core banking and billing."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel
from temporalio import activity

from fiflow.activities.errors import business_errors_are_final
from fiflow.domain.credit import BureauReport, CustomerSummary, OpenedAccount, StatementPage
from fiflow.integrations.billing import BillingClient
from fiflow.integrations.bureau import BureauClient
from fiflow.integrations.core_banking import CoreBankingClient


class PullCredit(BaseModel):
    """One bureau pull."""

    customer_id: str
    kind: Literal["soft", "hard"]
    purpose: str
    reference: str
    idempotency_key: str


class GetCustomerSummary(BaseModel):
    """Whose relationship summary to read."""

    customer_id: str


class GetStatementPage(BaseModel):
    """One page of statements."""

    customer_id: str
    months: int
    limit: int
    cursor: str | None = None


class OpenCreditAccount(BaseModel):
    """A credit account to open in core banking."""

    customer_id: str
    product: str
    amount: Decimal
    reference: str
    idempotency_key: str


class FindAccount(BaseModel):
    """An opening whose outcome is unknown: look its account up by the opening's key."""

    idempotency_key: str


class CloseAccount(BaseModel):
    """An account to close (compensation)."""

    account_id: str
    reason: str
    idempotency_key: str


class CreateBillingAccount(BaseModel):
    """A billing account for a core account."""

    customer_id: str
    core_account_id: str
    product: str
    reference: str
    idempotency_key: str


class AddBillingSchedule(BaseModel):
    """A statement or recurring-charge schedule."""

    billing_account_id: str
    kind: Literal["statement", "recurring_charge"]
    day_of_month: int
    amount: Decimal | None = None
    idempotency_key: str


class CancelBillingAccount(BaseModel):
    """A billing account to cancel (compensation)."""

    billing_account_id: str
    reason: str
    idempotency_key: str


class BureauActivities:
    """Credit-bureau pulls."""

    def __init__(self, client: BureauClient):
        self._bureau = client

    @activity.defn(name="pull_credit")
    @business_errors_are_final
    async def pull(self, req: PullCredit) -> BureauReport:
        """Pull the credit file (the idempotency key keeps a retried pull one pull)."""
        return await self._bureau.pull(
            req.customer_id, req.kind, req.purpose, req.reference, req.idempotency_key
        )


class CoreBankingActivities:
    """Core-banking reads and account lifecycle."""

    def __init__(self, client: CoreBankingClient):
        self._core = client

    @activity.defn(name="get_customer_summary")
    @business_errors_are_final
    async def summary(self, req: GetCustomerSummary) -> CustomerSummary:
        """The customer's accounts and relationship start."""
        return await self._core.summary(req.customer_id)

    @activity.defn(name="get_statement_page")
    @business_errors_are_final
    async def statement_page(self, req: GetStatementPage) -> StatementPage:
        """One page of statements."""
        return await self._core.statements(req.customer_id, req.months, req.limit, req.cursor)

    @activity.defn(name="open_credit_account")
    @business_errors_are_final
    async def open_account(self, req: OpenCreditAccount) -> str:
        """Open the account; returns its ID."""
        return await self._core.open_account(
            req.customer_id, req.product, req.amount, req.reference, req.idempotency_key
        )

    @activity.defn(name="find_account_by_key")
    @business_errors_are_final
    async def find_account(self, req: FindAccount) -> OpenedAccount | None:
        """The account an opening with this idempotency key created; None if it took no effect."""
        return await self._core.find_account(req.idempotency_key)

    @activity.defn(name="close_account")
    @business_errors_are_final
    async def close_account(self, req: CloseAccount) -> str:
        """Close the account; returns its status."""
        return await self._core.close_account(req.account_id, req.reason, req.idempotency_key)


class BillingActivities:
    """Billing set-up and cancellation."""

    def __init__(self, client: BillingClient):
        self._billing = client

    @activity.defn(name="create_billing_account")
    @business_errors_are_final
    async def create_account(self, req: CreateBillingAccount) -> str:
        """Create the billing account; returns its ID."""
        return await self._billing.create_account(
            req.customer_id, req.core_account_id, req.product, req.reference, req.idempotency_key
        )

    @activity.defn(name="add_billing_schedule")
    @business_errors_are_final
    async def add_schedule(self, req: AddBillingSchedule) -> str:
        """Add a schedule; returns its ID."""
        return await self._billing.add_schedule(
            req.billing_account_id, req.kind, req.day_of_month, req.amount, req.idempotency_key
        )

    @activity.defn(name="cancel_billing_account")
    @business_errors_are_final
    async def cancel_account(self, req: CancelBillingAccount) -> str:
        """Cancel the billing account; returns its status."""
        return await self._billing.cancel_account(
            req.billing_account_id, req.reason, req.idempotency_key
        )
