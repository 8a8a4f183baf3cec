"""The manager review as pure functions: what the ladder does, what a review decides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from fiflow.domain.credit import (
    DecisionRecord,
    FiredRule,
    ReasonCode,
    ReviewDecision,
    ReviewRequest,
    RuleOutcome,
)
from fiflow.domain.credit_rules import ReviewActionType, ReviewRules
from fiflow.domain.rules import render

# Per action type: the CRM note's category, the step name its idempotency key is built from
# (numbered from the second of a kind in one review round), and the path line it leaves.
_NOTE_ACTIONS = {
    ReviewActionType.REMIND: (
        "credit_review_reminder",
        "review_reminder",
        "review reminder sent",
    ),
    ReviewActionType.ESCALATE: (
        "credit_review_escalation",
        "review_escalation",
        "review escalated",
    ),
}


@dataclass(frozen=True)
class LadderNote:
    """A CRM note a ladder step writes."""

    step: str
    category: str
    text: str
    path: str


@dataclass(frozen=True)
class LadderDecision:
    """The rules decide: decline with this reason."""

    reason: str
    path: str = "review deadline passed"


LadderAction = LadderNote | LadderDecision


@dataclass(frozen=True)
class LadderStep:
    """At `after` since the review round started, if no manager decided, run `actions`."""

    after: timedelta
    # How much later than the previous step this one comes.
    gap: timedelta
    actions: tuple[LadderAction, ...]

    def due(self, started: datetime, previous_began: datetime | None) -> datetime:
        """When the step acts: `after` since the round started, and never less than `gap`
        after the previous step began acting, so a step held up (a back-office outage) does
        not shorten the time the next one gives (the senior queue keeps its grace)."""
        due = started + self.after
        if previous_began is not None:
            due = max(due, previous_began + self.gap)
        return due


def review_ladder(
    review: ReviewRules, cycle: int, *, product: str, amount: Decimal
) -> list[LadderStep]:
    """The ladder of one review round (`cycle`: 1, then one more per round of documents)."""
    seen: dict[ReviewActionType, int] = {}
    steps: list[LadderStep] = []
    previous = timedelta(0)
    for step in review.ladder:
        actions: list[LadderAction] = []
        for action in step.actions:
            if action.type is ReviewActionType.DECIDE:
                actions.append(LadderDecision(reason=action.decline_reason()))
                continue
            category, name, path = _NOTE_ACTIONS[action.type]
            seen[action.type] = n = seen.get(action.type, 0) + 1
            values = {"wait": str(step.wait), "product": product, "amount": str(amount)}
            actions.append(
                LadderNote(
                    step=f"{name}_{cycle}" if n == 1 else f"{name}_{cycle}_{n}",
                    category=category,
                    text=render(action.note_template(), values),
                    path=path,
                )
            )
        steps.append(LadderStep(after=step.wait, gap=step.wait - previous, actions=tuple(actions)))
        previous = step.wait
    return steps


def rules_decline(rule: str, reason: str, detail: str, at: datetime) -> DecisionRecord:
    """The rules decline where a person did not act in time."""
    return DecisionRecord(
        outcome=RuleOutcome.DECLINE,
        reasons=[reason],
        decided_by="rules",
        decided_at=at,
        fired_rules=[
            FiredRule(rule=rule, outcome=RuleOutcome.DECLINE, reason=reason, detail=detail)
        ],
    )


def review_timeout(reason: str, at: datetime) -> DecisionRecord:
    """No manager decided before the ladder's decide step."""
    return rules_decline("review.deadline", reason, "no review before the deadline", at)


def documents_timeout(at: datetime) -> DecisionRecord:
    """The applicant sent no documents before the documents deadline."""
    return rules_decline(
        "review.documents_deadline",
        ReasonCode.INFO_NOT_PROVIDED.value,
        "requested information not provided",
        at,
    )


def review_outcome(
    review: ReviewRequest, referral: DecisionRecord, requested: Decimal, at: datetime
) -> DecisionRecord | None:
    """The decision a manager's review makes; None when they asked for information."""
    decided_by = f"reviewer:{review.reviewer_id}"
    if review.decision is ReviewDecision.APPROVE:
        # The reviewer's amount, else the amount the rules would approve, else the request.
        amount = review.approved_amount or referral.approved_amount
        return DecisionRecord(
            outcome=RuleOutcome.APPROVE,
            approved_amount=amount or requested,
            decided_by=decided_by,
            decided_at=at,
        )
    if review.decision is ReviewDecision.DECLINE:
        return DecisionRecord(
            outcome=RuleOutcome.DECLINE,
            reasons=referral.reasons or [ReasonCode.REVIEWER_DECLINED.value],
            decided_by=decided_by,
            decided_at=at,
        )
    return None
