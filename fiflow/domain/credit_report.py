"""The results report of a finished credit application (compiled in the workflow, stored once)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from fiflow.domain.credit import (
    ApplicationState,
    CallRecord,
    ChildStatus,
    CreditApplicationRequest,
    CreditApplicationStatus,
    Decision,
    DecisionRecord,
    DocumentsRecord,
    FiredRule,
    ReviewRecord,
)


class ChildReport(BaseModel):
    """One child workflow's result and timing."""

    name: str
    workflow_id: str
    state: str
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    result: dict[str, Any] = Field(default_factory=dict)


class CreditReport(BaseModel):
    """Everything the application did, for the bank's records (no contact details)."""

    application_id: str
    customer_id: str
    product: str
    requested_amount: Decimal
    term_months: int | None
    stated_monthly_income: Decimal
    consent_to_pull: bool
    consent_given_at: datetime
    submitted_at: datetime
    completed_at: datetime
    rule_set_version: str
    final_state: ApplicationState
    decision: Decision
    decided_by: str | None
    approved_amount: Decimal | None
    reasons: list[str]
    rules_decision: DecisionRecord | None
    fired_rules: list[FiredRule]
    children: list[ChildReport]
    reviews: list[ReviewRecord]
    documents: list[DocumentsRecord]
    backoffice_calls: list[CallRecord]
    path: list[str]
    failure: str | None = None


def _child(name: str, child: ChildStatus, result: BaseModel | None) -> ChildReport:
    duration = None
    if child.started_at and child.completed_at:
        duration = (child.completed_at - child.started_at).total_seconds()
    # The child's own calls are listed with all the others, not twice.
    body = result.model_dump(mode="json", exclude={"calls"}) if result is not None else {}
    return ChildReport(
        name=name,
        workflow_id=child.workflow_id,
        state=child.state,
        started_at=child.started_at,
        completed_at=child.completed_at,
        duration_seconds=duration,
        result=body,
    )


FINAL_DECISION = {
    ApplicationState.APPROVED: Decision.APPROVED,
    ApplicationState.DECLINED: Decision.DECLINED,
    ApplicationState.FAILED: Decision.FAILED,
}


def compile_report(
    req: CreditApplicationRequest, status: CreditApplicationStatus, completed_at: datetime
) -> CreditReport:
    """The report of a finished application."""
    credit, history = status.credit_result, status.history_result
    calls = [*(credit.calls if credit else []), *(history.calls if history else []), *status.calls]
    calls.sort(key=lambda c: c.at)
    decision = status.decision
    return CreditReport(
        application_id=req.application_id,
        customer_id=req.customer_id,
        product=req.product.value,
        requested_amount=req.requested_amount,
        term_months=req.term_months,
        stated_monthly_income=req.stated_monthly_income,
        consent_to_pull=req.consent.credit_pull,
        consent_given_at=req.consent.given_at,
        submitted_at=status.timings["received"],
        completed_at=completed_at,
        rule_set_version=status.rule_set_version or "",
        final_state=status.state,
        decision=FINAL_DECISION.get(status.state, Decision.PENDING),
        decided_by=decision.decided_by if decision else None,
        approved_amount=decision.approved_amount
        if decision and status.state is ApplicationState.APPROVED
        else None,
        reasons=decision.reasons if decision else [],
        rules_decision=status.rules_decision,
        fired_rules=status.rules_decision.fired_rules if status.rules_decision else [],
        children=[
            _child("credit_check", status.credit_check, credit),
            _child("account_history", status.account_history, history),
        ],
        reviews=status.reviews,
        documents=status.documents,
        backoffice_calls=calls,
        path=status.path,
        failure=status.failure,
    )
