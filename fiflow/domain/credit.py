"""Credit applications: what a channel app submits and what fiflow makes of it."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.audit import AuditEntry

MAX_AMOUNT = Decimal("10000000")


class Product(StrEnum):
    """Credit products an application can be for."""

    CREDIT_CARD = "credit_card"
    PERSONAL_LOAN = "personal_loan"
    OVERDRAFT = "overdraft"


class Consent(BaseModel):
    """The applicant's consent to a credit-bureau pull."""

    model_config = ConfigDict(extra="forbid")

    credit_pull: bool = Field(description="The applicant agreed to a credit-bureau pull.")
    given_at: AwareDatetime = Field(description="When, with a UTC offset.")


class CreditApplicationRequest(BaseModel):
    """What a channel app posts to `POST /v1/credit-applications`."""

    model_config = ConfigDict(extra="forbid")

    # The channel app's idempotency key: the same ID always means the same application.
    # At most 64 characters: the report store keys on it.
    application_id: str = Field(
        pattern=SAFE_ID,
        max_length=64,
        description="The channel app's ID (its idempotency key).",
        examples=["app-2026-0001"],
    )
    customer_id: str = Field(
        pattern=SAFE_ID, description="The CRM customer ID.", examples=["cust-0001"]
    )
    product: Product = Field(description="The credit product.")
    requested_amount: Decimal = Field(
        gt=0, le=MAX_AMOUNT, decimal_places=2, description="Amount asked for.", examples=["5000.00"]
    )
    term_months: int | None = Field(
        default=None, ge=1, le=480, description="Term, for loans.", examples=[36]
    )
    stated_monthly_income: Decimal = Field(
        ge=0,
        le=MAX_AMOUNT,
        decimal_places=2,
        description="The applicant's stated monthly income.",
        examples=["6000.00"],
    )
    consent: Consent = Field(description="Consent to the credit-bureau pull.")


class ApplicationState(StrEnum):
    """Where an application is."""

    SUBMITTED = "submitted"
    CHECKING = "checking"
    AWAITING_REVIEW = "awaiting_review"
    AWAITING_DOCUMENTS = "awaiting_documents"
    OPENING_ACCOUNT = "opening_account"
    APPROVED = "approved"
    DECLINED = "declined"
    FAILED = "failed"


FINISHED_STATES = frozenset(
    {ApplicationState.APPROVED, ApplicationState.DECLINED, ApplicationState.FAILED}
)


class RuleOutcome(StrEnum):
    """What the rules (or a reviewer) make of an application."""

    APPROVE = "approve"
    DECLINE = "decline"
    REFER = "refer"


class ReasonCode(StrEnum):
    """Reason codes fiflow itself gives (the rule file's bands and flags name their own)."""

    BUREAU_UNAVAILABLE = "BUREAU_UNAVAILABLE"
    SCORE_UNUSABLE = "SCORE_UNUSABLE"
    NO_INCOME = "NO_INCOME"
    DTI_TOO_HIGH = "DTI_TOO_HIGH"
    DTI_HIGH = "DTI_HIGH"
    HISTORY_UNAVAILABLE = "HISTORY_UNAVAILABLE"
    # The review ladder's decide step (its default reason).
    REVIEW_TIMEOUT = "REVIEW_TIMEOUT"
    INFO_NOT_PROVIDED = "INFO_NOT_PROVIDED"
    # A reviewer declined a referral the rules gave no reason for.
    REVIEWER_DECLINED = "REVIEWER_DECLINED"


class Decision(StrEnum):
    """The Decision search attribute: how the application stands for ops."""

    PENDING = "pending"
    REFERRED = "referred"
    APPROVED = "approved"
    DECLINED = "declined"
    FAILED = "failed"


# --- child workflow results ------------------------------------------------------------------


class CallRecord(AuditEntry):
    """One back-office call an application made, and how it ended.

    Outcomes: done, failed, compensated (done, then undone), skipped. Its fields were
    already the audit shape's (domain/audit.py), so it keeps no older names.
    """

    system: str = Field(description="The system called (`bureau`, `core_banking`, `sms`).")


class BureauReport(BaseModel):
    """One credit-bureau pull as the bureau answered it."""

    pull_id: str
    kind: Literal["soft", "hard"]
    score: int = Field(ge=300, le=850)
    monthly_debt_payments: Decimal
    open_tradelines: int
    delinquencies_24m: int
    recent_inquiries: int
    pulled_at: datetime


class HardPull(StrEnum):
    """Whether the hard pull happened, and if not why."""

    DONE = "done"
    NOT_REQUIRED = "not_required"
    SKIPPED_LOW_SCORE = "skipped_low_score"
    SKIPPED_NO_CONSENT = "skipped_no_consent"
    NOT_REACHED = "not_reached"


class CreditCheckInput(BaseModel):
    """The single argument of CreditCheckWorkflow (the parent worked out the plan)."""

    application_id: str
    customer_id: str
    hard_pull_required: bool
    # No hard pull below this soft score: it would only cost the applicant an inquiry.
    hard_pull_min_score: int
    consent_to_pull: bool
    bureau_deadline: float = Field(gt=0, description="seconds of retrying before giving up")


class CreditCheckResult(BaseModel):
    """What the credit check found."""

    status: Literal["completed", "bureau_unavailable"]
    soft: BureauReport | None = None
    hard: BureauReport | None = None
    hard_pull: HardPull = HardPull.NOT_REACHED
    detail: str = ""
    calls: list[CallRecord] = Field(default_factory=list)
    started_at: datetime
    completed_at: datetime

    def deciding_report(self) -> BureauReport | None:
        """The pull the decision uses: the hard pull when there is one."""
        return self.hard or self.soft


class AccountHistoryInput(BaseModel):
    """The single argument of AccountHistoryWorkflow."""

    application_id: str
    customer_id: str
    months: int = Field(ge=1, le=36)
    page_size: int = Field(ge=1, le=100)


class StatementRow(BaseModel):
    """One account's month, as core banking reports it."""

    account_id: str
    month: str
    average_balance: Decimal
    lowest_balance: Decimal
    overdraft_days: int
    returned_payments: int
    deposits_total: Decimal


class CoreAccount(BaseModel):
    """An account as core banking lists it."""

    account_id: str
    type: str
    status: str
    opened_on: date | None = None


class OpenedAccount(BaseModel):
    """An account core banking opened, as a look-up by the opening's idempotency key finds it."""

    account_id: str
    status: Literal["open", "closed"]


class CustomerSummary(BaseModel):
    """The customer's relationship with the bank: since when, and which accounts."""

    customer_id: str
    customer_since: date | None = None
    accounts: list[CoreAccount]


class StatementPage(BaseModel):
    """One page of monthly statement rows."""

    items: list[StatementRow]
    next_cursor: str | None = None


class HistorySummary(BaseModel):
    """The customer's relationship with the bank over the review period, summarised."""

    customer_since: date | None
    tenure_months: int
    accounts: int
    months: int
    statement_rows: int
    pages: int
    average_balance: Decimal
    lowest_balance: Decimal
    overdraft_days: int
    overdraft_months: int
    returned_payments: int


class AccountHistoryResult(BaseModel):
    """What the account-history review found."""

    status: Literal["completed", "core_banking_unavailable"]
    summary: HistorySummary | None = None
    detail: str = ""
    calls: list[CallRecord] = Field(default_factory=list)
    started_at: datetime
    completed_at: datetime


# --- the parent workflow ---------------------------------------------------------------------


class CreditApplicationInput(BaseModel):
    """The single argument of CreditApplicationWorkflow."""

    request: CreditApplicationRequest
    received_at: datetime
    fi_name: str = "Fiflow Bank"


class FiredRule(BaseModel):
    """One rule that contributed to a decision."""

    rule: str
    outcome: RuleOutcome
    reason: str | None = None
    detail: str = ""


class DecisionRecord(BaseModel):
    """A decision: by the rules or by a reviewer."""

    outcome: RuleOutcome
    approved_amount: Decimal | None = None
    reasons: list[str] = Field(default_factory=list)
    decided_by: str  # "rules" or "reviewer:<id>"
    decided_at: datetime
    fired_rules: list[FiredRule] = Field(default_factory=list)


class ReviewDecision(StrEnum):
    """What a bank manager can decide about a referred application."""

    APPROVE = "approve"
    DECLINE = "decline"
    REQUEST_INFO = "request_info"


class ReviewRequest(BaseModel):
    """Body of `POST /v1/credit-applications/{id}/review`; also the `review` update."""

    model_config = ConfigDict(extra="forbid")

    decision: ReviewDecision
    # Short: it is stored as "reviewer:<id>" in the report's 64-character decided_by.
    reviewer_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,47}$")
    note: str = Field(default="", max_length=2000)
    # Approve may lower (never raise) the amount; the rules' approved amount otherwise.
    approved_amount: Decimal | None = Field(default=None, gt=0, le=MAX_AMOUNT, decimal_places=2)


class ReviewRecord(BaseModel):
    """A review the application received."""

    decision: ReviewDecision
    reviewer_id: str
    note: str
    at: datetime


class Document(BaseModel):
    """A document the applicant provided (stored elsewhere; fiflow keeps the reference)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$", description="What it is.", examples=["payslip"]
    )
    reference: str = Field(
        min_length=1, max_length=200, description="Where it is stored.", examples=["dms:7781"]
    )


class DocumentsRequest(BaseModel):
    """Body of `POST /v1/credit-applications/{id}/documents`; also the `documents` update."""

    model_config = ConfigDict(extra="forbid")

    submission_id: str = Field(
        pattern=SAFE_ID, description="The app's ID for this submission.", examples=["sub-1"]
    )
    documents: list[Document] = Field(min_length=1, max_length=20, description="1 to 20.")


class DocumentsRecord(BaseModel):
    """Documents the application received."""

    submission_id: str
    documents: list[Document]
    at: datetime


class ChildStatus(BaseModel):
    """One child workflow as the application sees it."""

    workflow_id: str
    state: Literal["pending", "running", "completed", "failed"] = "pending"
    started_at: datetime | None = None
    completed_at: datetime | None = None
    detail: str = ""


class AccountOpened(BaseModel):
    """What fulfilment set up for an approved application."""

    core_account_id: str | None = None
    billing_account_id: str | None = None
    schedule_ids: list[str] = Field(default_factory=list)


class CreditApplicationStatus(BaseModel):
    """The application as it stands; also the workflow's result."""

    application_id: str
    customer_id: str
    product: Product
    requested_amount: Decimal
    state: ApplicationState = ApplicationState.SUBMITTED
    rule_set_version: str | None = None
    credit_check: ChildStatus
    account_history: ChildStatus
    credit_result: CreditCheckResult | None = None
    history_result: AccountHistoryResult | None = None
    rules_decision: DecisionRecord | None = None
    decision: DecisionRecord | None = None
    reviews: list[ReviewRecord] = Field(default_factory=list)
    documents: list[DocumentsRecord] = Field(default_factory=list)
    account: AccountOpened = Field(default_factory=AccountOpened)
    calls: list[CallRecord] = Field(default_factory=list)
    path: list[str] = Field(default_factory=list)
    failure: str | None = None
    timings: dict[str, datetime] = Field(default_factory=dict)
