"""Dry runs of a draft rule set against sample cases, beside the active version.

Pure: the same validation (`RULE_FILES` parsers) and evaluation (`credit_rules.evaluate`, the
alert policies) the workflows use; nothing is started or stored. Alerts and credit support
dry runs; triggers and conditions are validated only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from fiflow.domain.alerts import AlertOutcome
from fiflow.domain.credit import (
    AccountHistoryResult,
    BureauReport,
    Consent,
    CreditApplicationRequest,
    CreditCheckResult,
    HistorySummary,
    Product,
)
from fiflow.domain.credit_rules import CreditRuleSet, evaluate
from fiflow.domain.rules import AlertRuleSet, RuleAction, RuleSetError
from fiflow.integrations.rules_store import RULE_FILES

DRY_RUN_SETS = ("alerts", "credit")
AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

# Shown in the form: a starting point a reviewer edits.
SAMPLE_CASES = {
    "alerts": """\
- {alert_type: card_fraud_suspected, outcome: confirm, amount: "40.00"}
- {alert_type: card_fraud_suspected, outcome: contest, amount: "900.00"}
- {alert_type: card_fraud_suspected, outcome: no_reply, amount: "900.00"}
""",
    "credit": """\
- {product: credit_card, requested_amount: "5000.00", monthly_income: "6000.00", score: 780,
   monthly_debt: "300.00", overdraft_days: 0, returned_payments: 0, tenure_months: 48}
- {product: credit_card, requested_amount: "9000.00", monthly_income: "4000.00", score: 640,
   monthly_debt: "900.00", overdraft_days: 6, returned_payments: 1, tenure_months: 10}
- {product: credit_card, requested_amount: "2000.00", monthly_income: "2500.00", score: 560,
   monthly_debt: "1200.00", overdraft_days: 20, returned_payments: 3, tenure_months: 3}
""",
}


class DryRunError(ValueError):
    """The draft or the cases cannot be used; the message says why."""


@dataclass(frozen=True)
class CaseResult:
    """One case under the active version and under the draft."""

    case: str
    active: str
    draft: str

    @property
    def changed(self) -> bool:
        """Whether the draft decides this case differently."""
        return self.active != self.draft


def parse_draft(name: str, text: str) -> Any:
    """The draft validated as its rule set (RuleSetError names the problem)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleSetError(f"the draft is not valid YAML/JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RuleSetError("the draft must be a mapping (a rule document)")
    if data.get("name", name) != name:
        raise RuleSetError(f"the draft's name must be {name!r}")
    return RULE_FILES[name][1]({**data, "name": name}, source=f"draft {name} rules")


def _cases(text: str) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(text) if text.strip() else []
    except yaml.YAMLError as exc:
        raise DryRunError(f"the sample cases are not valid YAML: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise DryRunError("the sample cases must be a list of mappings")
    if len(data) > 200:
        raise DryRunError("at most 200 sample cases")
    return data


def _actions(actions: list[RuleAction]) -> list[str]:
    return [a.type.value + (f"({a.outcome.value})" if a.outcome else "") for a in actions]


def alert_case(rules: AlertRuleSet, case: dict[str, Any]) -> str:
    """What an alert of this type, amount and ending would do under these rules."""
    policy = rules.policy(str(case.get("alert_type", "")))
    if policy is None:
        return "refused: unknown alert type"
    try:
        outcome = AlertOutcome(str(case.get("outcome", "")))
        amount = Decimal(str(case.get("amount", "0")))
    except (ValueError, InvalidOperation):
        raise DryRunError(
            "each alert case needs outcome (confirm|contest|no_reply|no_channel) and amount"
        ) from None
    steps: list[str] = []
    if policy.pre_block_min_amount is not None and amount >= policy.pre_block_min_amount:
        steps.append("pre-block card")
    if outcome is AlertOutcome.CONFIRM:
        steps += _actions(policy.on_confirm)
    elif outcome is AlertOutcome.CONTEST:
        steps += _actions(policy.on_contest)
    elif outcome is AlertOutcome.NO_CHANNEL:
        steps += _actions(policy.on_no_channel)
    else:
        for n, step in enumerate(policy.escalation, 1):
            steps.append(f"wait {step.wait}")
            steps += [f"step {n}: {a}" for a in _actions(step.actions)]
    return ", ".join(steps) or "no actions"


def _credit_inputs(
    case: dict[str, Any],
) -> tuple[Product, CreditApplicationRequest, CreditCheckResult, AccountHistoryResult]:
    try:
        product = Product(str(case["product"]))
        req = CreditApplicationRequest(
            application_id="dry-run",
            customer_id="dry-run",
            product=product,
            requested_amount=Decimal(str(case["requested_amount"])),
            term_months=case.get("term_months"),
            stated_monthly_income=Decimal(str(case["monthly_income"])),
            consent=Consent(credit_pull=True, given_at=AT),
        )
        report = BureauReport(
            pull_id="dry-run",
            kind="soft",
            score=int(case["score"]),
            monthly_debt_payments=Decimal(str(case.get("monthly_debt", "0"))),
            open_tradelines=int(case.get("open_tradelines", 3)),
            delinquencies_24m=int(case.get("delinquencies_24m", 0)),
            recent_inquiries=int(case.get("recent_inquiries", 0)),
            pulled_at=AT,
        )
        tenure = int(case.get("tenure_months", 24))
        summary = HistorySummary(
            customer_since=date(AT.year - tenure // 12 - 1, 1, 1),
            tenure_months=tenure,
            accounts=1,
            months=12,
            statement_rows=12,
            pages=1,
            average_balance=Decimal(str(case.get("average_balance", "2500.00"))),
            lowest_balance=Decimal(str(case.get("lowest_balance", "100.00"))),
            overdraft_days=int(case.get("overdraft_days", 0)),
            overdraft_months=int(case.get("overdraft_months", 0)),
            returned_payments=int(case.get("returned_payments", 0)),
        )
    except (KeyError, ValueError, TypeError, InvalidOperation) as exc:
        raise DryRunError(
            "each credit case needs product, requested_amount, monthly_income and score "
            f"({type(exc).__name__}: {str(exc)[:200]})"
        ) from None
    credit = CreditCheckResult(status="completed", soft=report, started_at=AT, completed_at=AT)
    history = AccountHistoryResult(
        status="completed", summary=summary, started_at=AT, completed_at=AT
    )
    return product, req, credit, history


def credit_case(rules: CreditRuleSet, case: dict[str, Any]) -> str:
    """The rules' decision on one sample application."""
    product, req, credit, history = _credit_inputs(case)
    product_rules = rules.products.get(product)
    if product_rules is None:
        return "refused: product not offered"
    decision = evaluate(product_rules, req, credit, history, AT)
    text = decision.outcome.value
    if decision.approved_amount is not None:
        text += f" {decision.approved_amount}"
    if decision.reasons:
        text += f" ({', '.join(decision.reasons)})"
    return text


def _label(name: str, case: dict[str, Any]) -> str:
    keys = (
        ("alert_type", "outcome", "amount")
        if name == "alerts"
        else ("product", "requested_amount", "score")
    )
    return " · ".join(str(case.get(k, "?")) for k in keys)


def dry_run(name: str, active: Any, draft: Any, cases_text: str) -> list[CaseResult]:
    """Each sample case under the active version and under the draft."""
    if name not in DRY_RUN_SETS:
        raise DryRunError(f"the {name} rules are validated only; dry runs cover alerts and credit")
    run = alert_case if name == "alerts" else credit_case
    return [CaseResult(_label(name, c), run(active, c), run(draft, c)) for c in _cases(cases_text)]
