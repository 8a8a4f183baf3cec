"""Credit rules as data: the shipped file, validation messages, and the decision itself."""

from __future__ import annotations

import copy
import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from fiflow.domain.credit import (
    AccountHistoryResult,
    Consent,
    CoreAccount,
    CreditApplicationRequest,
    CreditCheckResult,
    CustomerSummary,
    HardPull,
    HistorySummary,
    Product,
    RuleOutcome,
    StatementRow,
)
from fiflow.domain.credit_history import months_between, summarise_history
from fiflow.domain.credit_prefill import suggest_amount
from fiflow.domain.credit_rules import (
    ProductRules,
    RequestProblem,
    evaluate,
    parse_credit_rule_set,
    request_problems,
)
from fiflow.domain.rules import RuleSetError
from fiflow.integrations.rules_store import RuleStore, read_rules_file
from tests.workflows.standins import bureau_report

SHIPPED = Path(__file__).resolve().parents[2] / "fiflow" / "rules" / "credit.yaml"
AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def shipped() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    return data


def card_rules() -> ProductRules:
    return parse_credit_rule_set(shipped()).products[Product.CREDIT_CARD]


def request(**kw: Any) -> CreditApplicationRequest:
    base: dict[str, Any] = {
        "application_id": "app-1",
        "customer_id": "cust-0001",
        "product": "credit_card",
        "requested_amount": "5000.00",
        "stated_monthly_income": "6000.00",
        "consent": Consent(credit_pull=True, given_at=AT),
    }
    return CreditApplicationRequest.model_validate({**base, **kw})


def credit(score: int, debt: str = "400") -> CreditCheckResult:
    return CreditCheckResult(
        status="completed",
        soft=bureau_report(score, debt=debt),
        hard=bureau_report(score, "hard", debt=debt),
        hard_pull=HardPull.DONE,
        started_at=AT,
        completed_at=AT,
    )


def history(**kw: int) -> AccountHistoryResult:
    values: dict[str, Any] = {
        "customer_since": date(2020, 1, 1),
        "tenure_months": 70,
        "accounts": 2,
        "months": 12,
        "statement_rows": 24,
        "pages": 1,
        "average_balance": Decimal(2000),
        "lowest_balance": Decimal(100),
        "overdraft_days": 0,
        "overdraft_months": 0,
        "returned_payments": 0,
    }
    return AccountHistoryResult(
        status="completed",
        summary=HistorySummary(**{**values, **kw}),
        started_at=AT,
        completed_at=AT,
    )


def test_the_shipped_rules_are_valid_and_cover_every_product() -> None:
    rules = read_rules_file(SHIPPED)
    assert rules.name == "credit"
    assert set(RuleStore(None).credit_rules().products) == set(Product)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["products"]["credit_card"]["score_bands"].reverse(), "decreasing"),
        (lambda d: d["products"]["credit_card"]["score_bands"].pop(), "start at 300"),
        (lambda d: d["templates"].pop("declined"), "'declined'"),
        (lambda d: d["templates"].update(approved="{fi_name} {phone}"), "phone"),
        (lambda d: d["products"]["overdraft"].pop("hard_pull_above"), "hard_pull_above"),
        (lambda d: d["products"]["personal_loan"].pop("term_months"), "payment_rate"),
        (lambda d: d["products"]["credit_card"].update(decide_when="soon"), "decide_when"),
        (lambda d: d["review"].update(reminder_after="P9D"), "reminder_after"),
        (lambda d: d["products"].update(mortgage=d["products"]["overdraft"]), "products.mortgage"),
        (lambda d: d["products"]["credit_card"]["score_bands"][2].pop("reason"), "reason code"),
        (lambda d: d.update(surprise=1), "surprise"),
    ],
)
def test_an_invalid_rule_file_is_refused_with_a_message_naming_the_problem(
    change: Any, named: str
) -> None:
    data = copy.deepcopy(shipped())
    change(data)
    with pytest.raises(RuleSetError) as err:
        parse_credit_rule_set(data, source="credit.yaml")
    assert "credit.yaml is invalid" in str(err.value)
    assert named in str(err.value)


def test_a_changed_credit_file_is_picked_up_by_the_store(tmp_path: Path) -> None:
    store = RuleStore(tmp_path)
    data = shipped()
    (tmp_path / "credit.yaml").write_text(yaml.safe_dump({**data, "version": "v1"}))
    assert store.credit_rules().version == "v1"
    path = tmp_path / "credit.yaml"
    path.write_text(yaml.safe_dump({**data, "version": "v2"}))
    os.utime(path, ns=(1, 2_000_000_000_000_000_000))
    assert store.credit_rules().version == "v2"


def test_a_strong_applicant_is_approved_for_the_requested_amount() -> None:
    decision = evaluate(card_rules(), request(), credit(780), history(), AT)
    assert decision.outcome is RuleOutcome.APPROVE
    assert decision.approved_amount == Decimal("5000.00")
    assert [f.rule for f in decision.fired_rules] == ["score_bands[0]"]


def test_a_good_band_caps_the_amount() -> None:
    decision = evaluate(
        card_rules(),
        request(requested_amount="20000.00", stated_monthly_income="9000.00"),
        credit(700),
        history(),
        AT,
    )
    assert decision.outcome is RuleOutcome.APPROVE
    assert decision.approved_amount == Decimal("10000")


@pytest.mark.parametrize(
    ("score", "debt", "hist", "outcome", "reasons"),
    [
        (640, "400", {}, RuleOutcome.REFER, ["SCORE_BORDERLINE"]),
        (560, "400", {}, RuleOutcome.DECLINE, ["SCORE_TOO_LOW"]),
        (780, "2300", {}, RuleOutcome.REFER, ["DTI_HIGH"]),  # (2300+150)/6000 = 0.408
        (780, "3000", {}, RuleOutcome.DECLINE, ["DTI_TOO_HIGH"]),
        (780, "400", {"returned_payments": 3}, RuleOutcome.REFER, ["RETURNED_PAYMENTS"]),
        (780, "400", {"overdraft_days": 31}, RuleOutcome.DECLINE, ["EXCESSIVE_OVERDRAFT"]),
        (780, "400", {"tenure_months": 3}, RuleOutcome.REFER, ["SHORT_RELATIONSHIP"]),
        # A decline anywhere wins over referrals.
        (640, "3000", {"tenure_months": 3}, RuleOutcome.DECLINE, ["DTI_TOO_HIGH"]),
    ],
)
def test_each_rule_refers_or_declines(
    score: int, debt: str, hist: dict[str, int], outcome: RuleOutcome, reasons: list[str]
) -> None:
    decision = evaluate(card_rules(), request(), credit(score, debt), history(**hist), AT)
    assert (decision.outcome, decision.reasons) == (outcome, reasons)


def test_no_income_declines_and_a_missing_bureau_refers() -> None:
    no_income = evaluate(card_rules(), request(stated_monthly_income="0"), credit(780), None, AT)
    assert (no_income.outcome, no_income.reasons) == (RuleOutcome.DECLINE, ["NO_INCOME"])
    down = CreditCheckResult(status="bureau_unavailable", started_at=AT, completed_at=AT)
    refer = evaluate(card_rules(), request(), down, history(), AT)
    assert (refer.outcome, refer.reasons) == (RuleOutcome.REFER, ["BUREAU_UNAVAILABLE"])


def test_deciding_on_the_credit_check_alone_ignores_the_history() -> None:
    decision = evaluate(card_rules(), request(), credit(780), None, AT)
    assert decision.outcome is RuleOutcome.APPROVE


def test_request_problems_follow_the_product_rules() -> None:
    rules = parse_credit_rule_set(shipped())
    card, loan, overdraft = (rules.products[p] for p in Product)

    def codes(r: ProductRules, **kw: Any) -> list[RequestProblem]:
        return [c for c, _ in request_problems(r, request(**kw))]

    assert codes(card) == []
    assert codes(card, requested_amount="100.00") == [RequestProblem.AMOUNT_OUT_OF_RANGE]
    assert codes(card, term_months=12) == [RequestProblem.TERM_NOT_ALLOWED]
    assert codes(loan, product="personal_loan") == [RequestProblem.TERM_REQUIRED]
    assert codes(loan, product="personal_loan", term_months=120) == [
        RequestProblem.TERM_OUT_OF_RANGE
    ]
    no_consent = {"consent": Consent(credit_pull=False, given_at=AT)}
    assert codes(card, **no_consent) == [RequestProblem.CONSENT_REQUIRED]
    # A small overdraft needs no hard pull, so no consent is needed; a large one does.
    assert codes(overdraft, product="overdraft", requested_amount="800.00", **no_consent) == []
    assert codes(overdraft, product="overdraft", requested_amount="3000.00", **no_consent) == [
        RequestProblem.CONSENT_REQUIRED
    ]


def test_history_summary_totals_rows_and_counts_tenure() -> None:
    rows = [
        StatementRow(
            account_id="a",
            month=f"2026-{m:02d}",
            average_balance=Decimal(100 * m),
            lowest_balance=Decimal(-10 if m == 4 else 50),
            overdraft_days=3 if m in (4, 5) else 0,
            returned_payments=1 if m == 2 else 0,
            deposits_total=Decimal(0),
        )
        for m in range(1, 11)
    ]
    summary = summarise_history(
        CustomerSummary(
            customer_id="c",
            customer_since=None,
            accounts=[
                CoreAccount(
                    account_id="a", type="checking", status="open", opened_on=date(2024, 5, 20)
                )
            ],
        ),
        rows,
        months=12,
        pages=2,
        as_of=date(2026, 11, 25),
    )
    assert summary.customer_since == date(2024, 5, 20)
    assert summary.tenure_months == 30
    assert (summary.overdraft_days, summary.overdraft_months) == (6, 2)
    assert summary.returned_payments == 1
    assert summary.average_balance == Decimal("550.00")
    assert summary.lowest_balance == Decimal(-10)
    assert months_between(date(2026, 1, 31), date(2026, 2, 28)) == 0
    assert months_between(date(2026, 3, 1), date(2026, 1, 1)) == 0


def test_a_prefill_suggests_three_months_of_balance_within_the_products_limits() -> None:
    loan = parse_credit_rule_set(shipped()).products[Product.PERSONAL_LOAN]  # 1,000..50,000

    def with_balance(balance: str) -> HistorySummary:
        return history().summary.model_copy(update={"average_balance": Decimal(balance)})  # type: ignore[union-attr]

    assert suggest_amount(loan, with_balance("2345.67")) == Decimal("7000")
    assert suggest_amount(loan, with_balance("100")) == Decimal("1000")  # the floor
    assert suggest_amount(loan, with_balance("90000")) == Decimal("50000")  # the ceiling
    assert suggest_amount(loan, None) == Decimal("1000")
