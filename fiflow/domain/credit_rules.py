"""Credit rules as data: validated models and the pure decision over them (no I/O here)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fiflow.domain.credit import (
    AccountHistoryResult,
    CreditApplicationRequest,
    CreditCheckResult,
    DecisionRecord,
    FiredRule,
    Product,
    ReasonCode,
    RuleOutcome,
)
from fiflow.domain.rules import template_fields, validate_rules
from fiflow.domain.text import DEFAULT_SMS_MAX_SEGMENTS

CREDIT_TEMPLATE_FIELDS = frozenset({"fi_name", "product", "amount", "reasons", "note"})
REQUIRED_TEMPLATES = ("approved", "declined", "info_requested", "failed")
CENT = Decimal("0.01")


class Strict(BaseModel):
    """Rule models refuse unknown keys, so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(Strict):
    """Inclusive bounds."""

    min: Decimal = Field(gt=0)
    max: Decimal = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class TermRange(Strict):
    """Allowed loan terms, in months."""

    min: int = Field(ge=1)
    max: int = Field(le=480)


class ScoreBand(Strict):
    """Applicants scoring at least `min_score` get this outcome (first matching band wins)."""

    min_score: int = Field(ge=300, le=850)
    outcome: RuleOutcome
    reason: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]{1,39}$")
    max_amount: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _reason_when_not_approved(self) -> ScoreBand:
        if self.outcome is not RuleOutcome.APPROVE and self.reason is None:
            raise ValueError(f"a {self.outcome.value} band needs a reason code")
        return self


class DebtToIncome(Strict):
    """Debt-to-income thresholds (monthly debt including the new credit, over income)."""

    refer_above: Decimal = Field(gt=0, le=5)
    decline_above: Decimal = Field(gt=0, le=5)

    @model_validator(mode="after")
    def _ordered(self) -> DebtToIncome:
        if self.refer_above > self.decline_above:
            raise ValueError("refer_above must not exceed decline_above")
        return self


HistoryMeasure = Literal["returned_payments", "overdraft_days", "overdraft_months", "tenure_months"]


class HistoryFlag(Strict):
    """A condition on the account history that refers or declines."""

    measure: HistoryMeasure
    above: int | None = Field(default=None, ge=0)
    below: int | None = Field(default=None, ge=0)
    outcome: Literal[RuleOutcome.REFER, RuleOutcome.DECLINE]
    reason: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,39}$")

    @model_validator(mode="after")
    def _one_bound(self) -> HistoryFlag:
        if (self.above is None) == (self.below is None):
            raise ValueError("a history flag needs exactly one of above/below")
        return self


class BillingPlan(Strict):
    """What billing sets up for an approved account."""

    statement_day: int = Field(ge=1, le=28)
    # Loans are repaid by a monthly recurring charge of the instalment.
    recurring_instalment: bool = False


class ProductRules(Strict):
    """How one product is decided and set up."""

    amount: Range
    term_months: TermRange | None = None
    hard_pull: Literal["never", "required", "above_amount"]
    hard_pull_above: Decimal | None = Field(default=None, gt=0)
    # "all": wait for the credit check and the account history; "credit_check": decide on
    # the credit check alone while the history finishes for the record.
    decide_when: Literal["all", "credit_check"]
    # Monthly payment as a share of the amount (revolving credit); None: amount / term.
    payment_rate: Decimal | None = Field(default=None, gt=0, le=1)
    score_bands: list[ScoreBand] = Field(min_length=1)
    debt_to_income: DebtToIncome
    history_flags: list[HistoryFlag] = Field(default_factory=list)
    billing: BillingPlan

    @model_validator(mode="after")
    def _consistent(self) -> ProductRules:
        if self.hard_pull == "above_amount" and self.hard_pull_above is None:
            raise ValueError("hard_pull above_amount needs hard_pull_above")
        if self.payment_rate is None and self.term_months is None:
            raise ValueError("a product without term_months needs a payment_rate")
        scores = [b.min_score for b in self.score_bands]
        if scores != sorted(scores, reverse=True) or len(set(scores)) != len(scores):
            raise ValueError("score_bands must be in strictly decreasing min_score order")
        if scores[-1] != 300:
            raise ValueError("the last score band must start at 300 so every score has a band")
        if self.billing.recurring_instalment and self.term_months is None:
            raise ValueError("a recurring instalment needs term_months")
        return self

    def hard_pull_required(self, amount: Decimal) -> bool:
        """Whether an application for this amount needs a hard pull (consent permitting)."""
        if self.hard_pull == "required":
            return True
        return self.hard_pull == "above_amount" and amount > (self.hard_pull_above or 0)

    def lowest_non_declining_score(self) -> int:
        """Below this score the rules decline, so a hard pull would change nothing."""
        passing = [b.min_score for b in self.score_bands if b.outcome is not RuleOutcome.DECLINE]
        return min(passing) if passing else 851

    def monthly_payment(self, amount: Decimal, term_months: int | None) -> Decimal:
        """The new credit's monthly payment, for the debt-to-income ratio."""
        if self.payment_rate is not None:
            return (amount * self.payment_rate).quantize(CENT)
        return (amount / Decimal(term_months or 1)).quantize(CENT)


class BureauRules(Strict):
    """How long a bureau outage may delay an application before a manager takes over."""

    deadline: timedelta

    @model_validator(mode="after")
    def _bounds(self) -> BureauRules:
        if not timedelta(minutes=1) <= self.deadline <= timedelta(days=7):
            raise ValueError("bureau.deadline must be between 1 minute and 7 days")
        return self


class HistoryRules(Strict):
    """How much account history the review reads."""

    months: int = Field(ge=1, le=36)
    page_size: int = Field(ge=1, le=100)


class ReviewActionType(StrEnum):
    """What a step of the review ladder can do."""

    # A CRM note to the review queue.
    REMIND = "remind"
    # A CRM note that hands the application to senior review.
    ESCALATE = "escalate"
    # The rules decide instead of a manager (they decline); always the ladder's last action.
    DECIDE = "decide"


# Values a review note may use: the step's wait (since the review started), the product and
# the requested amount. The application's ID is appended to every note.
REVIEW_NOTE_FIELDS = frozenset({"wait", "product", "amount"})
DEFAULT_REVIEW_NOTES = {
    ReviewActionType.REMIND: "Referred credit application awaits review (SLA {wait}).",
    ReviewActionType.ESCALATE: (
        "Referred credit application passed its review deadline: escalated to senior review."
    ),
}
MAX_REVIEW_WAIT = timedelta(days=90)
REASON_CODE = r"^[A-Z][A-Z0-9_]{1,39}$"
# The review's earlier shape: one reminder, a deadline, then escalate (with a grace) or
# decline. Rule versions stored in that shape load as the equivalent ladder.
LEGACY_REVIEW_KEYS = ("reminder_after", "deadline", "on_deadline", "escalation_grace")


class ReviewAction(Strict):
    """One action of a ladder step; which fields apply depends on `type`."""

    type: ReviewActionType
    # remind / escalate: the CRM note's text (the shipped wording when left out).
    template: str | None = Field(default=None, min_length=1, max_length=500)
    # decide: what the rules decide, and the reason code the applicant's letter gives.
    outcome: Literal[RuleOutcome.DECLINE] | None = None
    reason: str | None = Field(default=None, pattern=REASON_CODE)

    @model_validator(mode="after")
    def _fields_for_type(self) -> ReviewAction:
        if self.type is ReviewActionType.DECIDE:
            if self.template is not None:
                raise ValueError("a decide action takes no template: it writes no note")
        else:
            extra = [f for f in ("outcome", "reason") if getattr(self, f) is not None]
            if extra:
                raise ValueError(f"a {self.type.value} action takes no {', '.join(extra)}")
            if self.template is not None:
                unknown = template_fields(self.template, name=self.type.value) - (
                    REVIEW_NOTE_FIELDS
                )
                if unknown:
                    raise ValueError(
                        f"the {self.type.value} template uses unknown field(s) "
                        f"{sorted(unknown)}; allowed: {sorted(REVIEW_NOTE_FIELDS)}"
                    )
        return self

    def note_template(self) -> str:
        """The note a remind or escalate action writes."""
        return self.template or DEFAULT_REVIEW_NOTES[self.type]

    def decline_reason(self) -> str:
        """The reason code a decide action declines with."""
        return self.reason or ReasonCode.REVIEW_TIMEOUT.value


class ReviewStep(Strict):
    """At `wait` after the review started (the referral, or documents received), if no
    manager has decided yet, run these actions in order."""

    wait: timedelta
    actions: list[ReviewAction]

    @model_validator(mode="after")
    def _valid(self) -> ReviewStep:
        if not timedelta(0) < self.wait <= MAX_REVIEW_WAIT:
            raise ValueError(f"wait must be more than 0 and at most {MAX_REVIEW_WAIT.days} days")
        if not self.actions:
            raise ValueError("a step needs at least one action")
        return self


class _LegacyReview(Strict):
    """The review SLA as rule versions before the ladder wrote it."""

    reminder_after: timedelta
    deadline: timedelta
    on_deadline: Literal["decline", "escalate"]
    escalation_grace: timedelta = timedelta(days=2)

    @model_validator(mode="after")
    def _ordered(self) -> _LegacyReview:
        if not timedelta(0) < self.reminder_after < self.deadline <= timedelta(days=60):
            raise ValueError("review needs 0 < reminder_after < deadline <= 60 days")
        return self

    def ladder(self) -> list[dict[str, Any]]:
        """The ladder that does what this SLA did, step for step."""
        remind = {"wait": self.reminder_after, "actions": [{"type": "remind"}]}
        decide = {"type": "decide", "outcome": "decline"}
        if self.on_deadline == "decline":
            return [remind, {"wait": self.deadline, "actions": [decide]}]
        escalate = {"type": "escalate"}
        if self.escalation_grace <= timedelta(0):
            # No grace: the rules decided right after escalating.
            return [remind, {"wait": self.deadline, "actions": [escalate, decide]}]
        return [
            remind,
            {"wait": self.deadline, "actions": [escalate]},
            {"wait": self.deadline + self.escalation_grace, "actions": [decide]},
        ]


class ReviewRules(Strict):
    """The manager-review SLA: a ladder of steps while no manager decides, and the
    documents deadline after a request for information."""

    ladder: list[ReviewStep]
    documents_deadline: timedelta

    @model_validator(mode="before")
    @classmethod
    def _from_legacy_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not any(k in data for k in LEGACY_REVIEW_KEYS):
            return data
        keys = ", ".join(LEGACY_REVIEW_KEYS)
        if "ladder" in data:
            raise ValueError(f"review has a ladder and the older {keys}: give one or the other")
        legacy = {k: data[k] for k in LEGACY_REVIEW_KEYS if k in data}
        try:
            old = _LegacyReview.model_validate(legacy)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(f"{where}: {msg}" if where else msg)
            raise ValueError("; ".join(problems)) from None
        rest = {k: v for k, v in data.items() if k not in LEGACY_REVIEW_KEYS}
        return {**rest, "ladder": old.ladder()}

    @model_validator(mode="after")
    def _valid(self) -> ReviewRules:
        if not timedelta(0) < self.documents_deadline <= timedelta(days=60):
            raise ValueError("review.documents_deadline must be more than 0 and at most 60 days")
        if not self.ladder:
            raise ValueError(
                "the review ladder is empty: it needs at least one step, the last ending "
                "with decide"
            )
        for i in range(1, len(self.ladder)):
            before, step = self.ladder[i - 1], self.ladder[i]
            if step.wait <= before.wait:
                raise ValueError(
                    f"ladder waits must increase (each counts from the start of the review): "
                    f"step {i + 1} waits {step.wait}, not after step {i}'s {before.wait}"
                )
        last = self.ladder[-1].actions
        if last[-1].type is not ReviewActionType.DECIDE:
            raise ValueError(
                "the ladder's last step must end with decide, or an unreviewed application "
                "would wait forever"
            )
        actions = [a for step in self.ladder for a in step.actions]
        if sum(a.type is ReviewActionType.DECIDE for a in actions) > 1:
            raise ValueError("decide may only be the last action of the last step")
        return self

    @property
    def deadline(self) -> timedelta:
        """When the review is overdue: the first escalation, or the rules' decision."""
        return next(
            step.wait
            for step in self.ladder
            if any(a.type is not ReviewActionType.REMIND for a in step.actions)
        )

    @property
    def decide_after(self) -> timedelta:
        """When the rules decide an application no manager decided."""
        return self.ladder[-1].wait

    @property
    def escalation_grace(self) -> timedelta:
        """How much longer senior review has after the deadline before the rules decide."""
        return self.decide_after - self.deadline


class CreditRuleSet(Strict):
    """A versioned credit rule file."""

    name: str = Field(default="credit", pattern=r"^credit$")
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    fi_name: str = Field(min_length=1, max_length=40)
    bureau: BureauRules
    history: HistoryRules
    review: ReviewRules
    templates: dict[str, str]
    products: dict[Product, ProductRules] = Field(min_length=1)
    # A rendered SMS longer than this is shortened (outside values first) before it is sent.
    sms_max_segments: int = Field(default=DEFAULT_SMS_MAX_SEGMENTS, ge=1, le=10)

    @model_validator(mode="after")
    def _templates_valid(self) -> CreditRuleSet:
        for name, text in self.templates.items():
            unknown = template_fields(text, name=name) - CREDIT_TEMPLATE_FIELDS
            if unknown:
                raise ValueError(
                    f"template {name!r} uses unknown field(s) {sorted(unknown)}; "
                    f"allowed: {sorted(CREDIT_TEMPLATE_FIELDS)}"
                )
        missing = [t for t in REQUIRED_TEMPLATES if t not in self.templates]
        if missing:
            raise ValueError(f"templates must define {', '.join(map(repr, missing))}")
        return self

    def for_product(self, product: Product) -> CreditRules | None:
        """What one application needs from the rule set."""
        rules = self.products.get(product)
        if rules is None:
            return None
        return CreditRules(
            version=self.version,
            fi_name=self.fi_name,
            bureau=self.bureau,
            history=self.history,
            review=self.review,
            templates=self.templates,
            product=rules,
            sms_max_segments=self.sms_max_segments,
        )


class CreditRules(BaseModel):
    """The rules one application runs by (recorded in its history when loaded)."""

    version: str
    fi_name: str
    bureau: BureauRules
    history: HistoryRules
    review: ReviewRules
    templates: dict[str, str]
    product: ProductRules
    sms_max_segments: int = DEFAULT_SMS_MAX_SEGMENTS


def parse_credit_rule_set(data: Any, *, source: str = "rule file") -> CreditRuleSet:
    """Validate a credit rule document."""
    return validate_rules(CreditRuleSet, data, source=source)


class RequestProblem(StrEnum):
    """Why an application cannot be taken under the product's rules."""

    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    TERM_REQUIRED = "term_required"
    TERM_NOT_ALLOWED = "term_not_allowed"
    TERM_OUT_OF_RANGE = "term_out_of_range"
    CONSENT_REQUIRED = "consent_required"


def request_problems(
    rules: ProductRules, req: CreditApplicationRequest
) -> list[tuple[RequestProblem, str]]:
    """Everything wrong with an application before anything runs (empty: acceptable)."""
    problems: list[tuple[RequestProblem, str]] = []
    amount = req.requested_amount
    if not rules.amount.min <= amount <= rules.amount.max:
        problems.append(
            (
                RequestProblem.AMOUNT_OUT_OF_RANGE,
                f"requested_amount must be between {rules.amount.min} and {rules.amount.max} "
                f"for {req.product.value}",
            )
        )
    terms = rules.term_months
    if terms is None and req.term_months is not None:
        problems.append((RequestProblem.TERM_NOT_ALLOWED, f"{req.product.value} has no term"))
    elif terms is not None and req.term_months is None:
        problems.append((RequestProblem.TERM_REQUIRED, f"{req.product.value} needs term_months"))
    elif (
        terms is not None
        and req.term_months is not None
        and not (terms.min <= req.term_months <= terms.max)
    ):
        problems.append(
            (
                RequestProblem.TERM_OUT_OF_RANGE,
                f"term_months must be between {terms.min} and {terms.max}",
            )
        )
    if rules.hard_pull_required(amount) and not req.consent.credit_pull:
        problems.append(
            (
                RequestProblem.CONSENT_REQUIRED,
                f"{req.product.value} for this amount needs a hard credit pull: "
                "consent.credit_pull must be true",
            )
        )
    return problems


def _history_measure(history: AccountHistoryResult, measure: str) -> int:
    assert history.summary is not None
    value: int = getattr(history.summary, measure)
    return value


def evaluate(
    rules: ProductRules,
    req: CreditApplicationRequest,
    credit: CreditCheckResult,
    history: AccountHistoryResult | None,
    at: datetime,
) -> DecisionRecord:
    """The rules' decision; `history` is None when the product decides on the credit check."""
    fired: list[FiredRule] = []
    report = credit.deciding_report()
    if credit.status != "completed" or report is None:
        fired.append(
            FiredRule(
                rule="bureau.unavailable",
                outcome=RuleOutcome.REFER,
                reason=ReasonCode.BUREAU_UNAVAILABLE.value,
                detail=credit.detail,
            )
        )
        return _combine(fired, None, at)

    found = next(
        ((i, b) for i, b in enumerate(rules.score_bands) if report.score >= b.min_score), None
    )
    if found is None:
        # The bands start at 300 and scores are validated to 300..850; refer, never crash.
        fired.append(
            FiredRule(
                rule="score_bands",
                outcome=RuleOutcome.REFER,
                reason=ReasonCode.SCORE_UNUSABLE.value,
                detail=f"score {report.score}",
            )
        )
        return _combine(fired, None, at)
    band_index, band = found
    fired.append(
        FiredRule(
            rule=f"score_bands[{band_index}]",
            outcome=band.outcome,
            reason=band.reason,
            detail=f"{report.kind} pull score {report.score} >= {band.min_score}",
        )
    )
    amount = req.requested_amount
    if band.max_amount is not None and band.max_amount < amount:
        amount = band.max_amount
        fired.append(
            FiredRule(
                rule=f"score_bands[{band_index}].max_amount",
                outcome=RuleOutcome.APPROVE,
                detail=f"amount capped at {band.max_amount}",
            )
        )
    amount = min(amount, rules.amount.max)

    income = req.stated_monthly_income
    payment = rules.monthly_payment(amount, req.term_months)
    debt = report.monthly_debt_payments + payment
    dti_limits = rules.debt_to_income
    if income <= 0:
        fired.append(
            FiredRule(
                rule="debt_to_income",
                outcome=RuleOutcome.DECLINE,
                reason=ReasonCode.NO_INCOME.value,
                detail="no stated income",
            )
        )
    else:
        dti = (debt / income).quantize(Decimal("0.001"), rounding=ROUND_DOWN)
        detail = f"debt {debt} / income {income} = {dti}"
        if dti > dti_limits.decline_above:
            fired.append(
                FiredRule(
                    rule="debt_to_income.decline_above",
                    outcome=RuleOutcome.DECLINE,
                    reason=ReasonCode.DTI_TOO_HIGH.value,
                    detail=detail,
                )
            )
        elif dti > dti_limits.refer_above:
            fired.append(
                FiredRule(
                    rule="debt_to_income.refer_above",
                    outcome=RuleOutcome.REFER,
                    reason=ReasonCode.DTI_HIGH.value,
                    detail=detail,
                )
            )

    if history is not None:
        if history.status != "completed" or history.summary is None:
            fired.append(
                FiredRule(
                    rule="history.unavailable",
                    outcome=RuleOutcome.REFER,
                    reason=ReasonCode.HISTORY_UNAVAILABLE.value,
                    detail=history.detail,
                )
            )
        else:
            for i, flag in enumerate(rules.history_flags):
                value = _history_measure(history, flag.measure)
                hit = (flag.above is not None and value > flag.above) or (
                    flag.below is not None and value < flag.below
                )
                if hit:
                    bound = f"> {flag.above}" if flag.above is not None else f"< {flag.below}"
                    fired.append(
                        FiredRule(
                            rule=f"history_flags[{i}]",
                            outcome=flag.outcome,
                            reason=flag.reason,
                            detail=f"{flag.measure} {value} {bound}",
                        )
                    )
    return _combine(fired, amount, at)


def _combine(fired: list[FiredRule], amount: Decimal | None, at: datetime) -> DecisionRecord:
    """Any decline declines; else any referral refers; else approve."""
    for outcome in (RuleOutcome.DECLINE, RuleOutcome.REFER):
        reasons = [f.reason for f in fired if f.outcome is outcome and f.reason]
        if any(f.outcome is outcome for f in fired):
            return DecisionRecord(
                outcome=outcome,
                reasons=list(dict.fromkeys(reasons)),
                decided_by="rules",
                decided_at=at,
                fired_rules=fired,
                # A referral keeps the amount the rules would approve, for the reviewer.
                approved_amount=amount if outcome is RuleOutcome.REFER else None,
            )
    return DecisionRecord(
        outcome=RuleOutcome.APPROVE,
        approved_amount=amount,
        decided_by="rules",
        decided_at=at,
        fired_rules=fired,
    )
