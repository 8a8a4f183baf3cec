"""The credit check and account-history children, for real, over the stand-in systems."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

from fiflow.domain.credit import (
    AccountHistoryInput,
    ApplicationState,
    CoreAccount,
    CreditCheckInput,
    CustomerSummary,
    HardPull,
)
from fiflow.workflows.account_history import AccountHistoryWorkflow
from fiflow.workflows.credit_check import CreditCheckWorkflow
from tests.workflows.credit_harness import CreditHarness, application, statement_rows


def plan(customer_id: str, **kw: object) -> CreditCheckInput:
    base: dict[str, object] = {
        "application_id": f"app-{uuid.uuid4().hex[:10]}",
        "customer_id": customer_id,
        "hard_pull_required": True,
        "hard_pull_min_score": 620,
        "consent_to_pull": True,
        "bureau_deadline": timedelta(hours=2).total_seconds(),
    }
    return CreditCheckInput.model_validate({**base, **kw})


async def check(children: CreditHarness, inp: CreditCheckInput):  # type: ignore[no-untyped-def]
    return await children.client.execute_workflow(
        CreditCheckWorkflow.run,
        inp,
        id=f"credit-{inp.application_id}-credit-check",
        task_queue=children.settings.task_queue,
    )


async def test_a_flaky_bureau_still_sees_exactly_one_hard_pull(children: CreditHarness) -> None:
    children.office.scores["cust-a"] = 700
    children.office.failures["bureau"] = 3  # the soft pull fails three times first
    inp = plan("cust-a")

    result = await check(children, inp)

    assert result.status == "completed" and result.hard_pull is HardPull.DONE
    assert result.hard is not None and result.hard.score == 700
    key = f"credit-{inp.application_id}:hard_pull"
    assert [k for kind, k in children.office.pulls if kind == "hard"] == [key]
    assert children.office.pull_attempts == 5

    # The same application checked again (a re-run) asks with the same keys: no new pull.
    again = await check(children, inp.model_copy())
    assert again.hard is not None and again.hard.pull_id == result.hard.pull_id
    assert len(children.office.pulls) == 2


async def test_no_hard_pull_for_a_sure_decline_or_without_consent(children: CreditHarness) -> None:
    children.office.scores.update({"cust-low": 560, "cust-ok": 760})

    low = await check(children, plan("cust-low"))
    no_consent = await check(children, plan("cust-ok", consent_to_pull=False))
    not_needed = await check(children, plan("cust-ok", hard_pull_required=False))

    assert low.hard_pull is HardPull.SKIPPED_LOW_SCORE and low.hard is None
    assert no_consent.hard_pull is HardPull.SKIPPED_NO_CONSENT
    assert not_needed.hard_pull is HardPull.NOT_REQUIRED
    assert [kind for kind, _ in children.office.pulls] == ["soft", "soft", "soft"]


async def test_a_bureau_down_past_its_deadline_gives_up_without_failing(
    children: CreditHarness,
) -> None:
    children.office.failures["bureau"] = 10**9

    result = await check(children, plan("cust-a"))

    assert result.status == "bureau_unavailable"
    # It retried until the next attempt would have fallen past the deadline (retries are
    # at most 5 minutes apart), and not beyond it.
    elapsed = result.completed_at - result.started_at
    assert timedelta(hours=2) - timedelta(minutes=5) <= elapsed <= timedelta(hours=2)
    assert children.office.pulls == []
    assert children.office.pull_attempts > 10  # it kept retrying, with backoff
    assert [(c.step, c.outcome) for c in result.calls] == [("soft_pull", "failed")]


async def test_the_application_is_referred_when_the_bureau_stays_down(
    children: CreditHarness,
) -> None:
    customer = children.customer()
    children.office.failures["bureau"] = 10**9
    children.office.summaries[customer.customer_id] = CustomerSummary(
        customer_id=customer.customer_id, customer_since=date(2019, 5, 1), accounts=[]
    )
    children.office.rows[customer.customer_id] = statement_rows(1, 12)
    req = application(customer)
    handle = await children.submit(req)

    async with children.env.time_skipping_unlocked():  # type: ignore[attr-defined]
        waiting = await children.state_is(handle, "awaiting_review")

    assert waiting.rules_decision is not None
    assert waiting.rules_decision.reasons == ["BUREAU_UNAVAILABLE"]
    assert waiting.state is ApplicationState.AWAITING_REVIEW


async def test_account_history_pages_through_every_statement(children: CreditHarness) -> None:
    customer_id = "cust-h"
    children.office.summaries[customer_id] = CustomerSummary(
        customer_id=customer_id,
        customer_since=date(2021, 3, 15),
        accounts=[
            CoreAccount(account_id=f"acc-{i}", type="checking", status="open") for i in range(3)
        ],
    )
    rows = statement_rows(3, 12, returned_in={"m02", "m07"})
    children.office.rows[customer_id] = rows
    inp = AccountHistoryInput(
        application_id="app-h", customer_id=customer_id, months=12, page_size=7
    )

    result = await children.client.execute_workflow(
        AccountHistoryWorkflow.run,
        inp,
        id="credit-app-h-account-history",
        task_queue=children.settings.task_queue,
    )

    assert result.status == "completed" and result.summary is not None
    summary = result.summary
    assert (summary.statement_rows, summary.pages) == (36, 6)
    assert children.office.page_requests == [None, "7", "14", "21", "28", "35"]
    assert summary.returned_payments == 2
    assert (summary.overdraft_days, summary.overdraft_months) == (2, 1)
    assert summary.lowest_balance == Decimal(-50)
    assert summary.accounts == 3
    assert summary.tenure_months >= 60  # since March 2021
    assert [c.step for c in result.calls] == ["summary"] + [
        f"statements_page_{n}" for n in range(1, 7)
    ]
