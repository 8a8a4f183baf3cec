"""CreditApplicationWorkflow on the time-skipping server, with stand-in children."""

from __future__ import annotations

import asyncio
import functools
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from fiflow.domain.credit import (
    ApplicationState,
    Document,
    DocumentsRequest,
    Product,
    ReviewDecision,
    ReviewRequest,
    RuleOutcome,
)
from fiflow.starters.credit_client import Rejected, submit_documents, submit_review
from tests.workflows import credit_harness
from tests.workflows.credit_harness import (
    CreditHarness,
    application,
    credit_result,
    history_result,
    running_credit_harness,
)
from tests.workflows.credit_standins import STAND_IN_TYPES, ScriptedCredit, ScriptedHistory
from tests.workflows.harness import poll
from tests.workflows.interaction_harness import SHIPPED_RULES
from tests.workflows.standin_activities import all_activities


def script(ch: CreditHarness, app_id: str, score: int | None, **history: int) -> None:
    """Script both children for one application."""
    ch.scripts.credit[app_id] = ScriptedCredit(result=credit_result(score))
    ch.scripts.history[app_id] = ScriptedHistory(result=history_result(**history))


async def test_a_strong_application_is_approved_set_up_and_reported(ch: CreditHarness) -> None:
    customer = ch.customer()
    req = application(customer)
    script(ch, req.application_id, 780)

    result = await ch.finish(await ch.submit(req))

    assert result.state is ApplicationState.APPROVED
    assert result.decision is not None and result.decision.decided_by == "rules"
    assert result.decision.approved_amount == Decimal("5000.00")
    # Both children ran with the plan the rules call for.
    [plan] = ch.scripts.credit_inputs
    assert plan.hard_pull_required and plan.consent_to_pull and plan.hard_pull_min_score == 620
    assert plan.bureau_deadline == timedelta(hours=2).total_seconds()
    assert [h.months for h in ch.scripts.history_inputs] == [12]
    # Account opened, billing set up with a statement schedule, CRM told, applicant told.
    assert list(ch.office.accounts.values()) == ["open"]
    assert list(ch.office.billing.values()) == ["active"]
    assert [(s["kind"], s["day"]) for s in ch.office.schedules] == [("statement", 1)]
    assert any("approved" in n for n in ch.office.notes())
    [sms] = ch.office.sms_to(customer.phone or "")
    assert "approved for $5,000.00" in sms
    assert result.account.core_account_id == "acct-1"

    stored = ch.reports.get(req.application_id)
    assert stored is not None
    assert (stored.decision, stored.product, stored.decided_by) == (
        "approved",
        "credit_card",
        "rules",
    )
    report = stored.report
    assert report["rule_set_version"] == result.rule_set_version
    assert [r["rule"] for r in report["fired_rules"]] == ["score_bands[0]"]
    assert {c["name"]: c["state"] for c in report["children"]} == {
        "credit_check": "completed",
        "account_history": "completed",
    }
    steps = [(c["system"], c["step"], c["outcome"]) for c in report["backoffice_calls"]]
    # The children's calls are in the report with the parent's own.
    assert ("bureau", "soft_pull", "done") in steps
    assert ("core_banking", "summary", "done") in steps
    assert ("core_banking", "open_account", "done") in steps
    assert ("billing", "statement_schedule", "done") in steps
    assert ("sms", "notify_approved", "done") in steps
    # No contact details in the report.
    assert customer.phone not in str(report) and customer.name not in str(report)


async def test_a_loan_gets_an_instalment_schedule(ch: CreditHarness) -> None:
    customer = ch.customer()
    req = application(
        customer, Product.PERSONAL_LOAN, requested_amount=Decimal("12000.00"), term_months=24
    )
    script(ch, req.application_id, 760)

    result = await ch.finish(await ch.submit(req))

    assert result.state is ApplicationState.APPROVED
    kinds = [(s["kind"], s["day"], s["amount"]) for s in ch.office.schedules]
    assert kinds == [("statement", 15, None), ("recurring_charge", 15, Decimal("500.00"))]


async def test_a_weak_application_is_declined_with_reason_codes(ch: CreditHarness) -> None:
    customer = ch.customer()
    req = application(customer)
    script(ch, req.application_id, 560)

    result = await ch.finish(await ch.submit(req))

    assert result.state is ApplicationState.DECLINED
    assert result.decision is not None and result.decision.reasons == ["SCORE_TOO_LOW"]
    assert ch.office.accounts == {} and ch.office.billing == {}
    [sms] = ch.office.sms_to(customer.phone or "")
    assert "SCORE_TOO_LOW" in sms
    assert any("declined: SCORE_TOO_LOW" in n for n in ch.office.notes())
    stored = ch.reports.get(req.application_id)
    assert stored is not None and stored.decision == "declined"
    assert stored.report["reasons"] == ["SCORE_TOO_LOW"]


async def test_history_flags_refer_and_a_manager_approves(ch: CreditHarness) -> None:
    customer = ch.customer()
    req = application(customer)
    script(ch, req.application_id, 760, returned=4)
    handle = await ch.submit(req)

    waiting = await ch.state_is(handle, "awaiting_review")
    assert waiting.rules_decision is not None
    assert waiting.rules_decision.outcome is RuleOutcome.REFER
    assert waiting.rules_decision.reasons == ["RETURNED_PAYMENTS"]
    # Documents are not what it waits for.
    with pytest.raises(Rejected) as wrong:
        await submit_documents(
            ch.client,
            req.application_id,
            DocumentsRequest(
                submission_id="s1", documents=[Document(kind="payslip", reference="doc-1")]
            ),
        )
    assert wrong.value.code == "wrong_state"
    with pytest.raises(Rejected) as too_much:
        await submit_review(
            ch.client,
            req.application_id,
            ReviewRequest(
                decision=ReviewDecision.APPROVE,
                reviewer_id="mgr-1",
                approved_amount=Decimal("9000.00"),
            ),
        )
    assert too_much.value.code == "amount_too_high"

    await submit_review(
        ch.client,
        req.application_id,
        ReviewRequest(
            decision=ReviewDecision.APPROVE,
            reviewer_id="mgr-1",
            note="known customer",
            approved_amount=Decimal("4000.00"),
        ),
    )
    result = await ch.finish(handle)

    assert result.state is ApplicationState.APPROVED
    assert result.decision is not None
    assert (result.decision.decided_by, result.decision.approved_amount) == (
        "reviewer:mgr-1",
        Decimal("4000.00"),
    )
    assert [r.reviewer_id for r in result.reviews] == ["mgr-1"]
    with pytest.raises(Rejected) as finished:
        await submit_review(
            ch.client,
            req.application_id,
            ReviewRequest(decision=ReviewDecision.DECLINE, reviewer_id="mgr-2"),
        )
    assert finished.value.code == "wrong_state"
    stored = ch.reports.get(req.application_id)
    assert stored is not None and stored.decided_by == "reviewer:mgr-1"


async def test_a_manager_asks_for_information_then_approves(ch: CreditHarness) -> None:
    customer = ch.customer()
    req = application(customer)
    script(ch, req.application_id, 640)  # a borderline score refers
    handle = await ch.submit(req)
    await ch.state_is(handle, "awaiting_review")

    await submit_review(
        ch.client,
        req.application_id,
        ReviewRequest(
            decision=ReviewDecision.REQUEST_INFO,
            reviewer_id="mgr-1",
            note="your last three payslips",
        ),
    )
    await ch.state_is(handle, "awaiting_documents")
    # The request goes out just after the state changes: wait for it.
    [ask] = await poll(lambda: ch.office.sms_to(customer.phone or ""), lambda m: len(m) == 1)
    assert "your last three payslips" in ask
    docs = DocumentsRequest(
        submission_id="sub-1", documents=[Document(kind="payslip", reference="doc-77")]
    )
    await submit_documents(ch.client, req.application_id, docs)
    await submit_documents(ch.client, req.application_id, docs)  # a retried delivery
    await ch.state_is(handle, "awaiting_review")
    await submit_review(
        ch.client,
        req.application_id,
        ReviewRequest(decision=ReviewDecision.APPROVE, reviewer_id="mgr-2"),
    )
    result = await ch.finish(handle)

    assert result.state is ApplicationState.APPROVED
    assert [d.submission_id for d in result.documents] == ["sub-1"]
    assert [r.decision for r in result.reviews] == [
        ReviewDecision.REQUEST_INFO,
        ReviewDecision.APPROVE,
    ]
    assert result.decision is not None and result.decision.decided_by == "reviewer:mgr-2"


async def test_an_unreviewed_referral_is_reminded_escalated_then_declined(
    ch: CreditHarness,
) -> None:
    customer = ch.customer()
    req = application(customer)
    script(ch, req.application_id, 640)

    result = await ch.finish(await ch.submit(req))  # the server skips the days

    assert result.state is ApplicationState.DECLINED
    assert result.decision is not None
    assert (result.decision.decided_by, result.decision.reasons) == ("rules", ["REVIEW_TIMEOUT"])
    categories = [c.body["text"] for c in ch.office.of("crm")]
    assert any("awaits review" in t for t in categories)
    assert any("escalated to senior review" in t for t in categories)
    waited = result.timings["decided"] - result.timings["referred"]
    # Reminder after 1 day, escalation at the 3-day deadline, decline 2 days after that.
    assert waited >= timedelta(days=5)
    assert result.path[-4:-1] == [
        "review reminder sent",
        "review escalated",
        "review deadline passed",
    ]


async def test_no_documents_in_time_declines(ch: CreditHarness) -> None:
    customer = ch.customer()
    req = application(customer)
    script(ch, req.application_id, 640)
    handle = await ch.submit(req)
    await ch.state_is(handle, "awaiting_review")
    await submit_review(
        ch.client,
        req.application_id,
        ReviewRequest(
            decision=ReviewDecision.REQUEST_INFO, reviewer_id="mgr-1", note="proof of income"
        ),
    )

    result = await ch.finish(handle)

    assert result.state is ApplicationState.DECLINED
    assert result.decision is not None and result.decision.reasons == ["INFO_NOT_PROVIDED"]


async def test_bureau_unavailable_refers_to_a_manager(ch: CreditHarness) -> None:
    customer = ch.customer()
    req = application(customer)
    script(ch, req.application_id, None)
    handle = await ch.submit(req)

    waiting = await ch.state_is(handle, "awaiting_review")

    assert waiting.rules_decision is not None
    assert waiting.rules_decision.reasons == ["BUREAU_UNAVAILABLE"]
    await submit_review(
        ch.client,
        req.application_id,
        ReviewRequest(decision=ReviewDecision.DECLINE, reviewer_id="mgr-1"),
    )
    result = await ch.finish(handle)
    assert result.state is ApplicationState.DECLINED
    assert result.decision is not None and result.decision.reasons == ["BUREAU_UNAVAILABLE"]


async def test_a_billing_failure_is_compensated_in_reverse_order(ch: CreditHarness) -> None:
    customer = ch.customer()
    req = application(customer)
    script(ch, req.application_id, 780)
    ch.office.refuse.add("billing.add_schedule")

    result = await ch.finish(await ch.submit(req))

    assert result.state is ApplicationState.FAILED
    assert result.failure is not None and "statement_schedule" in result.failure
    # No half-open account: billing cancelled, then the account closed.
    assert list(ch.office.billing.values()) == ["cancelled"]
    assert list(ch.office.accounts.values()) == ["closed"]
    assert result.path[-3:-1] == ["compensated: cancel_billing", "compensated: close_account"]
    [sms] = ch.office.sms_to(customer.phone or "")
    assert "couldn't finish" in sms
    outcomes = {c.step: c.outcome for c in result.calls}
    assert outcomes["open_account"] == "compensated"
    assert outcomes["create_billing_account"] == "compensated"
    assert outcomes["statement_schedule"] == "failed"
    stored = ch.reports.get(req.application_id)
    assert stored is not None and stored.decision == "failed"


async def test_a_duplicate_submission_starts_nothing_new(ch: CreditHarness) -> None:
    customer = ch.customer()
    req = application(customer)
    script(ch, req.application_id, 780)

    handles = await asyncio.gather(*(ch.submit(req) for _ in range(5)))
    result = await ch.finish(handles[0])
    again = await ch.submit(req)  # after it finished, too

    assert result.state is ApplicationState.APPROVED
    assert len(ch.scripts.credit_inputs) == 1
    assert len(ch.office.accounts) == 1
    assert (await again.result()).state is ApplicationState.APPROVED
    assert len(ch.scripts.credit_inputs) == 1


async def test_an_overdraft_decides_on_the_credit_check_alone(ch: CreditHarness) -> None:
    customer = ch.customer()
    req = application(customer, Product.OVERDRAFT, requested_amount=Decimal("800.00"))
    ch.scripts.credit[req.application_id] = ScriptedCredit(result=credit_result(700, hard=False))
    # The history takes an hour and would refer; the overdraft does not wait for it.
    ch.scripts.history[req.application_id] = ScriptedHistory(
        result=history_result(returned=9), delay_seconds=3600
    )

    result = await ch.finish(await ch.submit(req))

    assert result.state is ApplicationState.APPROVED
    assert not ch.scripts.credit_inputs[0].hard_pull_required  # 800 is under the 2500 line
    assert result.account_history.completed_at is not None
    assert result.timings["decided"] < result.account_history.completed_at
    assert result.history_result is not None and result.history_result.status == "completed"
    stored = ch.reports.get(req.application_id)
    assert stored is not None
    history = next(c for c in stored.report["children"] if c["name"] == "account_history")
    assert (
        history["state"] == "completed" and history["result"]["summary"]["returned_payments"] == 9
    )


# A review ladder of the FI's own: two reminders, then escalate and let the rules decide.
THREE_STEP_LADDER = [
    {"wait": "PT4H", "actions": [{"type": "remind", "template": "First reminder ({wait})."}]},
    {"wait": "PT8H", "actions": [{"type": "remind", "template": "Second reminder ({wait})."}]},
    {
        "wait": "P1D",
        "actions": [
            {"type": "escalate", "template": "Escalated: {product} {amount} unreviewed."},
            {"type": "decide", "outcome": "decline", "reason": "REVIEW_OVERDUE"},
        ],
    },
]


@pytest.fixture
async def ladder_ch(
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[CreditHarness]:
    """The credit harness over a rules directory whose credit rules have THREE_STEP_LADDER."""
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    data = yaml.safe_load((rules / "credit.yaml").read_text(encoding="utf-8"))
    data["version"] = "three-step-ladder"
    data["review"]["ladder"] = THREE_STEP_LADDER
    (rules / "credit.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    # The harness builds its activities with all_activities: give it this rules directory.
    monkeypatch.setattr(
        credit_harness, "all_activities", functools.partial(all_activities, rules_dir=rules)
    )
    request.node.replay_skip_types = STAND_IN_TYPES
    async with running_credit_harness(time_skipping_env, task_queue, tmp_path) as harness:
        yield harness


async def test_a_three_step_ladder_from_the_rules_reminds_twice_then_escalates(
    ladder_ch: CreditHarness,
) -> None:
    ch = ladder_ch
    customer = ch.customer()
    req = application(customer)
    script(ch, req.application_id, 640)  # a borderline score refers

    result = await ch.finish(await ch.submit(req))

    assert result.rule_set_version == "three-step-ladder"
    assert result.state is ApplicationState.DECLINED
    assert result.decision is not None
    assert (result.decision.decided_by, result.decision.reasons) == ("rules", ["REVIEW_OVERDUE"])
    wf = f"credit-{req.application_id}"
    # The CRM got exactly the ladder's notes, in order, then the decline.
    assert [(c.key, c.body["text"]) for c in ch.office.of("crm")] == [
        (f"{wf}:review_reminder_1", f"First reminder (4:00:00). Application {req.application_id}."),
        (
            f"{wf}:review_reminder_1_2",
            f"Second reminder (8:00:00). Application {req.application_id}.",
        ),
        (
            f"{wf}:review_escalation_1",
            f"Escalated: credit_card 5000.00 unreviewed. Application {req.application_id}.",
        ),
        (
            f"{wf}:crm_declined",
            f"Credit application declined: REVIEW_OVERDUE. Application {req.application_id}.",
        ),
    ]
    # Each at its wait since the referral; the rules decided at the last step's.
    referred = result.timings["referred"]
    at = {c.step: c.at - referred for c in result.calls if c.system == "crm"}
    assert timedelta(hours=4) <= at["review_reminder_1"] < timedelta(hours=5)
    assert timedelta(hours=8) <= at["review_reminder_1_2"] < timedelta(hours=9)
    assert timedelta(days=1) <= at["review_escalation_1"] < timedelta(days=1, hours=1)
    assert timedelta(days=1) <= result.timings["decided"] - referred < timedelta(days=1, hours=1)
    assert result.path[-5:-1] == [
        "review reminder sent",
        "review reminder sent",
        "review escalated",
        "review deadline passed",
    ]
