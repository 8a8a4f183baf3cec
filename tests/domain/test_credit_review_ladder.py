"""The credit review as data: the ladder's validation, the older SLA keys, the review outcome."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from fiflow.domain.credit import (
    DecisionRecord,
    ReviewDecision,
    ReviewRequest,
    RuleOutcome,
)
from fiflow.domain.credit_review import (
    LadderDecision,
    LadderNote,
    review_ladder,
    review_outcome,
    review_timeout,
)
from fiflow.domain.credit_rules import ReviewRules, parse_credit_rule_set
from fiflow.domain.rules import RuleSetError

SHIPPED = Path(__file__).resolve().parents[2] / "fiflow" / "rules" / "credit.yaml"
AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LEGACY = {
    "reminder_after": "P1D",
    "deadline": "P3D",
    "on_deadline": "escalate",
    "escalation_grace": "P2D",
    "documents_deadline": "P7D",
}


def shipped() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    return data


def with_review(review: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(shipped())
    data["review"] = review
    return data


def refused(review: dict[str, Any]) -> str:
    with pytest.raises(RuleSetError) as err:
        parse_credit_rule_set(with_review(review), source="credit.yaml")
    message = str(err.value)
    assert "credit.yaml is invalid" in message
    assert "review" in message
    return message


def remind(template: str | None = None) -> dict[str, Any]:
    return {"type": "remind", **({"template": template} if template else {})}


DECIDE = {"type": "decide", "outcome": "decline", "reason": "REVIEW_TIMEOUT"}


def ladder(*steps: tuple[str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "ladder": [{"wait": wait, "actions": actions} for wait, actions in steps],
        "documents_deadline": "P7D",
    }


def test_the_shipped_ladder_reminds_escalates_then_declines() -> None:
    review = parse_credit_rule_set(shipped()).review
    steps = review_ladder(review, 1, product="credit_card", amount=Decimal("5000.00"))
    assert [s.after for s in steps] == [timedelta(days=1), timedelta(days=3), timedelta(days=5)]
    [reminder], [escalation], [decision] = (s.actions for s in steps)
    assert isinstance(reminder, LadderNote) and isinstance(escalation, LadderNote)
    assert (reminder.step, reminder.category) == ("review_reminder_1", "credit_review_reminder")
    assert reminder.text == "Referred credit application awaits review (SLA 1 day, 0:00:00)."
    assert (escalation.step, escalation.category) == (
        "review_escalation_1",
        "credit_review_escalation",
    )
    assert "escalated to senior review" in escalation.text
    assert decision == LadderDecision(reason="REVIEW_TIMEOUT")
    # What the API's lists show as due: the escalation, then the decision.
    assert (review.deadline, review.escalation_grace) == (timedelta(days=3), timedelta(days=2))


def test_the_older_keys_load_as_the_ladder_they_always_meant() -> None:
    old = parse_credit_rule_set(with_review(dict(LEGACY))).review
    new = parse_credit_rule_set(shipped()).review
    plan = {"product": "credit_card", "amount": Decimal("5000.00")}
    # The same steps, notes, keys and reason: runs under either form do the same.
    assert review_ladder(old, 2, **plan) == review_ladder(new, 2, **plan)  # type: ignore[arg-type]
    assert old.documents_deadline == new.documents_deadline == timedelta(days=7)


def test_the_older_decline_on_deadline_declines_without_escalating() -> None:
    review = parse_credit_rule_set(with_review({**LEGACY, "on_deadline": "decline"})).review
    steps = review_ladder(review, 1, product="overdraft", amount=Decimal(100))
    assert [s.after for s in steps] == [timedelta(days=1), timedelta(days=3)]
    assert steps[1].actions == (LadderDecision(reason="REVIEW_TIMEOUT"),)


def test_an_older_zero_grace_escalates_and_decides_in_one_step() -> None:
    review = parse_credit_rule_set(with_review({**LEGACY, "escalation_grace": "PT0S"})).review
    steps = review_ladder(review, 1, product="overdraft", amount=Decimal(100))
    assert [s.after for s in steps] == [timedelta(days=1), timedelta(days=3)]
    escalation, decision = steps[1].actions
    assert isinstance(escalation, LadderNote) and escalation.path == "review escalated"
    assert isinstance(decision, LadderDecision)


def test_a_held_up_step_does_not_shorten_the_next_steps_gap() -> None:
    review = parse_credit_rule_set(shipped()).review
    reminder, escalation, decision = review_ladder(
        review, 1, product="credit_card", amount=Decimal(1)
    )
    assert (reminder.due(AT, None), escalation.due(AT, AT + timedelta(days=1))) == (
        AT + timedelta(days=1),
        AT + timedelta(days=3),
    )
    # The reminder's note waited out a CRM outage until day 4: escalation at once, and the
    # senior queue still gets its two days from then.
    assert escalation.due(AT, AT + timedelta(days=1)) < AT + timedelta(days=4)
    assert decision.gap == timedelta(days=2)
    assert decision.due(AT, AT + timedelta(days=4)) == AT + timedelta(days=6)
    assert decision.due(AT, AT + timedelta(days=3)) == AT + timedelta(days=5)


def test_a_ladder_survives_its_round_trip_through_a_history() -> None:
    review = parse_credit_rule_set(with_review(dict(LEGACY))).review
    again = ReviewRules.model_validate_json(review.model_dump_json())
    assert again == review


def test_repeated_actions_get_their_own_keys_and_templates_fill_in() -> None:
    rules = parse_credit_rule_set(
        with_review(
            ladder(
                ("PT4H", [remind("{product} for {amount} waits {wait}.")]),
                ("PT8H", [remind()]),
                ("P1D", [{"type": "escalate"}, DECIDE]),
            )
        )
    )
    steps = review_ladder(rules.review, 3, product="overdraft", amount=Decimal("900.00"))
    notes = [a for s in steps for a in s.actions if isinstance(a, LadderNote)]
    assert [n.step for n in notes] == [
        "review_reminder_3",
        "review_reminder_3_2",
        "review_escalation_3",
    ]
    assert notes[0].text == "overdraft for 900.00 waits 4:00:00."


@pytest.mark.parametrize(
    ("review", "named"),
    [
        ({"ladder": [], "documents_deadline": "P7D"}, "the review ladder is empty"),
        (ladder(("P2D", [remind()]), ("P1D", [DECIDE])), "ladder waits must increase"),
        (ladder(("P2D", [remind()]), ("P2D", [DECIDE])), "step 2 waits 2 days"),
        (ladder(("P1D", [{"type": "call_manager"}]), ("P2D", [DECIDE])), "'remind', 'escalate'"),
        (ladder(("P1D", [remind()]), ("P2D", [{"type": "escalate"}])), "must end with decide"),
        (ladder(("P1D", [DECIDE]), ("P2D", [DECIDE])), "decide may only be the last action"),
        (ladder(("P1D", []), ("P2D", [DECIDE])), "at least one action"),
        (ladder(("PT0S", [remind()]), ("P2D", [DECIDE])), "wait must be more than 0"),
        (ladder(("P1D", [remind()]), ("P100D", [DECIDE])), "at most 90 days"),
        (ladder(("P1D", [remind("{name} waits")]), ("P2D", [DECIDE])), "['name']"),
        (ladder(("P1D", [{"type": "remind", "reason": "X_Y"}]), ("P2D", [DECIDE])), "no reason"),
        (ladder(("P1D", [remind()]), ("P2D", [{**DECIDE, "reason": "late"}])), "reason"),
        (ladder(("P1D", [remind()]), ("P2D", [{**DECIDE, "outcome": "approve"}])), "outcome"),
        ({**ladder(("P1D", [DECIDE])), "reminder_after": "PT1H"}, "give one or the other"),
        ({**LEGACY, "reminder_after": "P9D"}, "reminder_after < deadline"),
        ({**LEGACY, "on_deadline": "ignore"}, "on_deadline"),
    ],
)
def test_an_invalid_review_is_refused_naming_the_problem(
    review: dict[str, Any], named: str
) -> None:
    assert named in refused(review)


def test_review_outcomes() -> None:
    referral = DecisionRecord(
        outcome=RuleOutcome.REFER,
        reasons=["SCORE_BORDERLINE"],
        approved_amount=Decimal("3000.00"),
        decided_by="rules",
        decided_at=AT,
    )
    requested = Decimal("5000.00")

    def by(decision: ReviewDecision, **kw: Any) -> DecisionRecord | None:
        req = ReviewRequest(decision=decision, reviewer_id="mgr-1", **kw)
        return review_outcome(req, referral, requested, AT)

    approved = by(ReviewDecision.APPROVE)
    assert approved is not None and approved.outcome is RuleOutcome.APPROVE
    assert (approved.approved_amount, approved.decided_by) == (Decimal("3000.00"), "reviewer:mgr-1")
    lowered = by(ReviewDecision.APPROVE, approved_amount=Decimal("2500.00"))
    assert lowered is not None and lowered.approved_amount == Decimal("2500.00")
    declined = by(ReviewDecision.DECLINE)
    assert declined is not None and declined.reasons == ["SCORE_BORDERLINE"]
    assert by(ReviewDecision.REQUEST_INFO) is None

    no_reason = referral.model_copy(update={"reasons": [], "approved_amount": None})
    req = ReviewRequest(decision=ReviewDecision.DECLINE, reviewer_id="mgr-2")
    outcome = review_outcome(req, no_reason, requested, AT)
    assert outcome is not None and outcome.reasons == ["REVIEWER_DECLINED"]
    req = ReviewRequest(decision=ReviewDecision.APPROVE, reviewer_id="mgr-2")
    outcome = review_outcome(req, no_reason, requested, AT)
    assert outcome is not None and outcome.approved_amount == requested

    timeout = review_timeout("REVIEW_TIMEOUT", AT)
    assert (timeout.outcome, timeout.reasons, timeout.decided_by) == (
        RuleOutcome.DECLINE,
        ["REVIEW_TIMEOUT"],
        "rules",
    )
    assert [f.rule for f in timeout.fired_rules] == ["review.deadline"]
