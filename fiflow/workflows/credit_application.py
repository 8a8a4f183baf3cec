"""CreditApplicationWorkflow: check, decide (with a manager when referred), set up, report."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from temporalio.workflow import ChildWorkflowHandle

with workflow.unsafe.imports_passed_through():
    from fiflow.activities.backoffice import AddCrmNote, CrmActivities, GetCustomer
    from fiflow.activities.credit import (
        AddBillingSchedule,
        BillingActivities,
        CancelBillingAccount,
        CloseAccount,
        CoreBankingActivities,
        CreateBillingAccount,
        FindAccount,
        OpenCreditAccount,
    )
    from fiflow.activities.reports import ReportActivities, StoreCreditReport
    from fiflow.activities.rules import LoadCreditRules, RuleActivities
    from fiflow.domain import search_attributes as sa
    from fiflow.domain.credit import (
        AccountHistoryInput,
        AccountHistoryResult,
        ApplicationState,
        CallRecord,
        ChildStatus,
        CreditApplicationInput,
        CreditApplicationStatus,
        CreditCheckInput,
        CreditCheckResult,
        Decision,
        DecisionRecord,
        DocumentsRecord,
        DocumentsRequest,
        OpenedAccount,
        ReviewRecord,
        ReviewRequest,
        RuleOutcome,
    )
    from fiflow.domain.credit_report import compile_report
    from fiflow.domain.credit_review import (
        LadderDecision,
        documents_timeout,
        review_ladder,
        review_outcome,
        review_timeout,
    )
    from fiflow.domain.credit_rules import CreditRules, ReviewRules, evaluate
    from fiflow.domain.customers import Customer, channel_order
    from fiflow.domain.keys import credit_workflow_id, idempotency_key
    from fiflow.domain.rules import render, render_sms
    from fiflow.domain.text import NOTE_MAX, clean_text
    from fiflow.workflows.account_history import AccountHistoryWorkflow
    from fiflow.workflows.credit_check import CreditCheckWorkflow
    from fiflow.workflows.failures import cause_of
    from fiflow.workflows.options import BACKOFFICE, QUICK, REPORT
    from fiflow.workflows.reach import Message, reach

# Template values that can be long or come from a person: shortened first in a long SMS.
CREDIT_OUTSIDE_FIELDS = frozenset({"note", "reasons"})

T = TypeVar("T")
R = TypeVar("R")

DECISION_OF_STATE = {
    ApplicationState.AWAITING_REVIEW: Decision.REFERRED,
    ApplicationState.AWAITING_DOCUMENTS: Decision.REFERRED,
    ApplicationState.APPROVED: Decision.APPROVED,
    ApplicationState.DECLINED: Decision.DECLINED,
    ApplicationState.FAILED: Decision.FAILED,
}


# Compensation -> the step it undoes (that step's record then says "compensated").
COMPENSATES = {"close_account": "open_account", "cancel_billing": "create_billing_account"}


class StepFailed(Exception):
    """A fulfilment step failed for good (its retries are spent or it was refused)."""

    def __init__(self, step: str, detail: str):
        super().__init__(f"{step}: {detail}")
        self.step = step


@workflow.defn
class CreditApplicationWorkflow:
    """One per application: child checks in parallel, rules, review, fulfilment, report."""

    @workflow.init
    def __init__(self, inp: CreditApplicationInput) -> None:
        req = inp.request
        self._inp = inp
        self._id = credit_workflow_id(req.application_id)
        self._status = CreditApplicationStatus(
            application_id=req.application_id,
            customer_id=req.customer_id,
            product=req.product,
            requested_amount=req.requested_amount,
            credit_check=ChildStatus(workflow_id=f"{self._id}-credit-check"),
            account_history=ChildStatus(workflow_id=f"{self._id}-account-history"),
            timings={"received": inp.received_at},
        )
        self._rules: CreditRules | None = None
        self._customer: Customer | None = None
        self._review: ReviewRequest | None = None
        # Which update the application takes right now: a review, documents, or neither.
        # Cleared the moment one arrives or a deadline passes, so nothing is taken and ignored.
        self._accepting: ApplicationState | None = None
        self._documents: DocumentsRequest | None = None
        self._search: list[SearchAttributeUpdate[Any]] = []

    # --- handlers -------------------------------------------------------------------------

    @workflow.query(name="status")
    def status(self) -> CreditApplicationStatus:
        """The application as it stands."""
        return self._status

    @workflow.update(name="review")
    def review(self, req: ReviewRequest) -> CreditApplicationStatus:
        """A bank manager's decision on a referred application."""
        self._review = req
        self._accepting = None
        self._status.reviews.append(
            ReviewRecord(
                decision=req.decision, reviewer_id=req.reviewer_id, note=req.note, at=workflow.now()
            )
        )
        return self._status

    @review.validator
    def _review_fits(self, req: ReviewRequest) -> None:
        state = self._status.state
        if self._accepting is not ApplicationState.AWAITING_REVIEW:
            raise ApplicationError(
                f"application is {state.value}, not awaiting a review", type="wrong_state"
            )
        ceiling = self._status.requested_amount
        if req.approved_amount is not None and req.approved_amount > ceiling:
            raise ApplicationError(
                f"approved_amount may not exceed the requested {ceiling}", type="amount_too_high"
            )

    @workflow.update(name="documents")
    def documents(self, req: DocumentsRequest) -> CreditApplicationStatus:
        """Documents the applicant provided after a request for information."""
        self._documents = req
        self._accepting = None
        self._status.documents.append(
            DocumentsRecord(
                submission_id=req.submission_id, documents=req.documents, at=workflow.now()
            )
        )
        return self._status

    @documents.validator
    def _documents_fit(self, req: DocumentsRequest) -> None:
        state = self._status.state
        if self._accepting is not ApplicationState.AWAITING_DOCUMENTS:
            raise ApplicationError(
                f"application is {state.value}, not awaiting documents", type="wrong_state"
            )

    # --- main flow ------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: CreditApplicationInput) -> CreditApplicationStatus:
        """Run the application to a decision, fulfil or decline it, store the report."""
        s, req = self._status, inp.request
        rules = await workflow.execute_local_activity_method(
            RuleActivities.load_credit_rules, LoadCreditRules(product=req.product), **QUICK
        )
        self._rules = rules
        s.rule_set_version = rules.version
        self._search.append(sa.RULE_SET_VERSION.value_set(rules.version))
        try:
            self._customer = await workflow.execute_local_activity_method(
                CrmActivities.get_customer, GetCustomer(customer_id=req.customer_id), **QUICK
            )
        except ActivityError as exc:
            # The decision does not need the profile; only the messages to the applicant do.
            s.path.append(f"customer profile unavailable: {cause_of(exc)}")

        self._set_state(ApplicationState.CHECKING)
        check, history = await self._start_children(rules)
        credit = await self._credit_result(check)
        history_result: AccountHistoryResult | None = None
        if rules.product.decide_when == "all":
            history_result = await self._history_result(history)
        else:
            s.path.append("deciding on the credit check alone")
        decision = evaluate(rules.product, req, credit, history_result, workflow.now())
        s.rules_decision = decision
        s.timings["rules_decided"] = workflow.now()
        s.path.append(f"rules: {decision.outcome.value} {' '.join(decision.reasons)}".strip())

        if decision.outcome is RuleOutcome.REFER:
            decision = await self._manager_review(rules, decision)
        s.decision = decision
        s.timings["decided"] = workflow.now()
        if decision.outcome is RuleOutcome.APPROVE:
            await self._fulfil(rules, decision)
        else:
            await self._decline(rules, decision)

        # The other child may still run (decide_when: credit_check); its result belongs in
        # the report all the same.
        if s.history_result is None:
            await self._history_result(history)
        await workflow.wait_condition(workflow.all_handlers_finished)
        s.timings["completed"] = workflow.now()
        report = compile_report(req, s, s.timings["completed"])
        await workflow.execute_activity_method(
            ReportActivities.store_credit_report, StoreCreditReport(report=report), **REPORT
        )
        s.path.append("report stored")
        return s

    # --- children -------------------------------------------------------------------------

    async def _start_children(
        self, rules: CreditRules
    ) -> tuple[
        ChildWorkflowHandle[Any, CreditCheckResult], ChildWorkflowHandle[Any, AccountHistoryResult]
    ]:
        s, req = self._status, self._inp.request
        product = rules.product
        check = await workflow.start_child_workflow(
            CreditCheckWorkflow.run,
            CreditCheckInput(
                application_id=req.application_id,
                customer_id=req.customer_id,
                hard_pull_required=product.hard_pull_required(req.requested_amount),
                hard_pull_min_score=product.lowest_non_declining_score(),
                consent_to_pull=req.consent.credit_pull,
                bureau_deadline=rules.bureau.deadline.total_seconds(),
            ),
            id=s.credit_check.workflow_id,
            static_summary=f"Credit check for application {req.application_id}",
            search_attributes=self._child_search_attributes(),
        )
        self._child_started(s.credit_check)
        history = await workflow.start_child_workflow(
            AccountHistoryWorkflow.run,
            AccountHistoryInput(
                application_id=req.application_id,
                customer_id=req.customer_id,
                months=rules.history.months,
                page_size=rules.history.page_size,
            ),
            id=s.account_history.workflow_id,
            static_summary=f"Account history for application {req.application_id}",
            search_attributes=self._child_search_attributes(),
        )
        self._child_started(s.account_history)
        return check, history

    def _child_search_attributes(self) -> TypedSearchAttributes:
        req = self._inp.request
        return TypedSearchAttributes(
            [
                SearchAttributePair(sa.APPLICATION_ID, req.application_id),
                SearchAttributePair(sa.PRODUCT, req.product.value),
            ]
        )

    def _child_started(self, child: ChildStatus) -> None:
        child.state = "running"
        child.started_at = workflow.now()

    async def _child_result(
        self,
        handle: ChildWorkflowHandle[Any, R],
        child: ChildStatus,
        failed: Callable[[str, datetime], R],
    ) -> R:
        """A child's result; a child that failed outright counts as its system unavailable."""
        try:
            result = await handle
        except ChildWorkflowError as exc:
            result = failed(cause_of(exc), child.started_at or workflow.now())
            child.state = "failed"
        else:
            child.state = "completed"
        child.completed_at = workflow.now()
        return result

    async def _credit_result(
        self, handle: ChildWorkflowHandle[Any, CreditCheckResult]
    ) -> CreditCheckResult:
        s = self._status
        result = await self._child_result(
            handle,
            s.credit_check,
            lambda cause, started: CreditCheckResult(
                status="bureau_unavailable",
                detail=f"credit check failed: {cause}",
                started_at=started,
                completed_at=workflow.now(),
            ),
        )
        s.credit_check.detail = result.detail or f"hard pull: {result.hard_pull.value}"
        s.credit_result = result
        return result

    async def _history_result(
        self, handle: ChildWorkflowHandle[Any, AccountHistoryResult]
    ) -> AccountHistoryResult:
        s = self._status
        result = await self._child_result(
            handle,
            s.account_history,
            lambda cause, started: AccountHistoryResult(
                status="core_banking_unavailable",
                detail=f"account history failed: {cause}",
                started_at=started,
                completed_at=workflow.now(),
            ),
        )
        s.account_history.detail = result.detail or result.status
        s.history_result = result
        return result

    # --- manager review -------------------------------------------------------------------

    async def _manager_review(self, rules: CreditRules, referral: DecisionRecord) -> DecisionRecord:
        """Wait for a manager; the rules' review ladder reminds, escalates and finally decides."""
        s, review = self._status, rules.review
        s.timings["referred"] = workflow.now()
        cycle = 1  # one more for each round of documents: the ladder restarts per round
        while True:
            self._await(ApplicationState.AWAITING_REVIEW)
            timed_out = await self._review_ladder(review, cycle)
            if timed_out is not None:
                return timed_out
            decided = self._review
            assert decided is not None
            self._review = None
            s.path.append(f"review: {decided.decision.value} by {decided.reviewer_id}")
            outcome = review_outcome(decided, referral, s.requested_amount, workflow.now())
            if outcome is not None:
                return outcome
            # request_info: ask the applicant, wait for documents, then back to the manager.
            self._await(ApplicationState.AWAITING_DOCUMENTS)
            await self._notify(
                rules,
                "info_requested",
                f"info_request_{len(s.reviews)}",
                # The reviewer's words reach the applicant: cleaned like any outside text.
                note=clean_text(decided.note, NOTE_MAX) or "supporting documents",
            )
            documents_due = workflow.now() + review.documents_deadline
            if not await self._wait_for(lambda: self._documents is not None, documents_due):
                self._accepting = None
                s.path.append("no documents before the deadline")
                return documents_timeout(workflow.now())
            self._documents = None
            s.path.append("documents received")
            cycle += 1

    async def _review_ladder(self, review: ReviewRules, cycle: int) -> DecisionRecord | None:
        """Run one round's ladder until a manager decides (None) or the rules do."""
        s = self._status
        started = workflow.now()
        began: datetime | None = None  # when the previous step began acting
        ladder = review_ladder(review, cycle, product=s.product.value, amount=s.requested_amount)
        for step in ladder:
            if await self._wait_for(lambda: self._review is not None, step.due(started, began)):
                return None
            began = workflow.now()
            for i, action in enumerate(step.actions):
                if i and self._review is not None:
                    return None  # a manager decided while the step's earlier action ran
                if isinstance(action, LadderDecision):
                    self._accepting = None
                    s.path.append(action.path)
                    return review_timeout(action.reason, workflow.now())
                await self._crm_note(action.step, action.category, action.text)
                s.path.append(action.path)
        raise AssertionError("a validated review ladder ends with decide")

    def _await(self, state: ApplicationState) -> None:
        """Enter a state that waits for a person, and start taking that update."""
        self._set_state(state)
        self._accepting = state

    async def _wait_for(self, condition: Callable[[], bool], until: datetime) -> bool:
        """Wait for the condition until a point in time; False when the time came first."""
        remaining = until - workflow.now()
        if remaining <= timedelta(0):
            return condition()
        try:
            await workflow.wait_condition(condition, timeout=remaining)
        except TimeoutError:
            return False
        return True

    # --- outcomes -------------------------------------------------------------------------

    async def _fulfil(self, rules: CreditRules, decision: DecisionRecord) -> None:
        """Open the account, set up billing, update CRM; undo in reverse if a step fails."""
        s, req = self._status, self._inp.request
        amount = decision.approved_amount or s.requested_amount
        self._set_state(ApplicationState.OPENING_ACCOUNT)
        opening_key = self._key("open_account")
        # Registered before the call: an opening that timed out may have taken effect anyway.
        undo: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("close_account", lambda: self._close_account(opening_key))
        ]
        try:
            account_id: str = await self._step(
                "core_banking",
                "open_account",
                CoreBankingActivities.open_account,
                OpenCreditAccount(
                    customer_id=req.customer_id,
                    product=req.product.value,
                    amount=amount,
                    reference=req.application_id,
                    idempotency_key=opening_key,
                ),
            )
            s.account.core_account_id = account_id
            billing_id: str = await self._step(
                "billing",
                "create_billing_account",
                BillingActivities.create_account,
                CreateBillingAccount(
                    customer_id=req.customer_id,
                    core_account_id=account_id,
                    product=req.product.value,
                    reference=req.application_id,
                    idempotency_key=self._key("billing_account"),
                ),
            )
            s.account.billing_account_id = billing_id
            undo.append(
                (
                    "cancel_billing",
                    lambda: self._step(
                        "billing",
                        "cancel_billing_account",
                        BillingActivities.cancel_account,
                        CancelBillingAccount(
                            billing_account_id=billing_id,
                            reason="application_failed",
                            idempotency_key=self._key("cancel_billing"),
                        ),
                    ),
                )
            )
            plan = rules.product.billing
            s.account.schedule_ids.append(
                await self._step(
                    "billing",
                    "statement_schedule",
                    BillingActivities.add_schedule,
                    AddBillingSchedule(
                        billing_account_id=billing_id,
                        kind="statement",
                        day_of_month=plan.statement_day,
                        idempotency_key=self._key("statement_schedule"),
                    ),
                )
            )
            if plan.recurring_instalment:
                instalment = rules.product.monthly_payment(amount, req.term_months)
                s.account.schedule_ids.append(
                    await self._step(
                        "billing",
                        "instalment_schedule",
                        BillingActivities.add_schedule,
                        AddBillingSchedule(
                            billing_account_id=billing_id,
                            kind="recurring_charge",
                            day_of_month=plan.statement_day,
                            amount=instalment,
                            idempotency_key=self._key("instalment_schedule"),
                        ),
                    )
                )
        except StepFailed as failed:
            s.failure = str(failed)
            s.path.append(f"fulfilment failed at {failed.step}; compensating")
            await self._compensate(undo)
            await self._notify(rules, "failed", "notify_failed")
            self._set_state(ApplicationState.FAILED)
            return
        s.path.append("account opened and billing set up")
        # After the try: a CRM outage must not close an account that is open and billed.
        await self._crm_note(
            "crm_approved",
            "credit_application",
            f"Credit application approved: {req.product.value} {amount}.",
        )
        await self._notify(rules, "approved", "notify_approved", amount=amount)
        self._set_state(ApplicationState.APPROVED)

    async def _compensate(self, undo: list[tuple[str, Callable[[], Awaitable[Any]]]]) -> None:
        """Undo completed steps, newest first; a failed undo is recorded for ops, not hidden."""
        for name, action in reversed(undo):
            try:
                if await action() is False:
                    continue  # nothing was done that needs undoing
            except StepFailed as failed:
                self._status.path.append(f"compensation {name} failed")
                self._status.failure = f"{self._status.failure}; compensation failed: {failed}"
                continue
            self._status.path.append(f"compensated: {name}")
            undone = COMPENSATES[name]
            for call in self._status.calls:
                if call.step == undone and call.outcome == "done":
                    call.outcome = "compensated"

    async def _close_account(self, opening_key: str) -> bool:
        """Close the account fulfilment opened; False when no opening took effect."""
        s = self._status
        account_id = s.account.core_account_id
        if account_id is None:
            # The opening failed without an answer (its retries timed out): it may have taken
            # effect all the same, so look for it by its key. Histories written before left
            # such an account open (docs/architecture.md, section 7).
            if not workflow.patched("close-account-of-unknown-opening"):
                return False
            found: OpenedAccount | None = await self._step(
                "core_banking",
                "find_account",
                CoreBankingActivities.find_account,
                FindAccount(idempotency_key=opening_key),
            )
            if found is None:
                s.path.append("the failed opening opened no account")
                return False
            account_id = s.account.core_account_id = found.account_id
            s.path.append("the failed opening did open an account")
        await self._step(
            "core_banking",
            "close_account",
            CoreBankingActivities.close_account,
            CloseAccount(
                account_id=account_id,
                reason="application_failed",
                idempotency_key=self._key("close_account"),
            ),
        )
        return True

    async def _decline(self, rules: CreditRules, decision: DecisionRecord) -> None:
        reasons = ", ".join(decision.reasons) or "see letter"
        await self._crm_note(
            "crm_declined", "credit_application", f"Credit application declined: {reasons}."
        )
        await self._notify(rules, "declined", "notify_declined", reasons=reasons)
        self._set_state(ApplicationState.DECLINED)

    # --- plumbing -------------------------------------------------------------------------

    async def _step(
        self, system: str, step: str, method: Callable[..., Awaitable[T]], arg: Any
    ) -> T:
        """One back-office write, recorded with its outcome; StepFailed when it failed for good."""
        key = getattr(arg, "idempotency_key", None)
        try:
            result = await workflow.execute_activity_method(method, arg, **BACKOFFICE)
        except ActivityError as exc:
            self._record(system, step, key, "failed", cause_of(exc))
            raise StepFailed(step, cause_of(exc)) from exc
        self._record(system, step, key, "done", str(result) if isinstance(result, str) else "")
        return result

    async def _crm_note(self, step: str, category: str, text: str) -> None:
        try:
            await self._step(
                "crm",
                step,
                CrmActivities.add_note,
                AddCrmNote(
                    customer_id=self._inp.request.customer_id,
                    category=category,
                    text=f"{text} Application {self._inp.request.application_id}.",
                    idempotency_key=self._key(step),
                ),
            )
        except StepFailed:
            self._status.path.append(f"{step} failed")

    async def _notify(
        self,
        rules: CreditRules,
        template: str,
        step: str,
        *,
        amount: Decimal | None = None,
        reasons: str = "",
        note: str = "",
    ) -> None:
        """Tell the applicant on their best channel; an opted-out SMS falls back to push."""
        customer = self._customer
        if customer is None:
            self._record("messaging", step, None, "skipped", "no customer profile")
            return
        values = {
            "fi_name": rules.fi_name,
            "product": self._inp.request.product.value.replace("_", " "),
            "amount": f"${amount:,.2f}" if amount is not None else "",
            "reasons": reasons,
            "note": note,
        }
        text = render(rules.templates[template], values)
        message = Message(
            purpose=f"credit:{step}",
            sms=render_sms(
                rules.templates[template],
                values,
                outside=CREDIT_OUTSIDE_FIELDS,
                max_segments=rules.sms_max_segments,
            ),
            push_title="Your application",
            push_body=text,
            push_data={"application_id": self._status.application_id},
        )
        channel, attempts = await reach(
            customer, channel_order(customer), message, lambda c: self._key(f"{step}:{c.value}")
        )
        for attempt in attempts:
            self._record(
                attempt.channel.value,
                step,
                attempt.idempotency_key,
                attempt.outcome,
                attempt.detail,
            )
        if channel is not None:
            return
        self._status.path.append(f"{step}: applicant could not be reached")

    def _record(self, system: str, step: str, key: str | None, outcome: str, detail: str) -> None:
        self._status.calls.append(
            CallRecord(
                system=system,
                step=step,
                idempotency_key=key,
                outcome=outcome,
                detail=detail,
                at=workflow.now(),
            )
        )

    def _key(self, step: str) -> str:
        return idempotency_key(self._id, step)

    def _set_state(self, state: ApplicationState) -> None:
        s = self._status
        s.state = state
        decision = DECISION_OF_STATE.get(state, Decision.PENDING)
        workflow.upsert_search_attributes([*self._search, sa.DECISION.value_set(decision.value)])
        self._search = []
        amount = s.decision.approved_amount if s.decision else None
        lines = [f"**{state.value}**", f"rules: {s.rule_set_version}"]
        if s.rules_decision:
            lines.append(
                f"rules said {s.rules_decision.outcome.value} {' '.join(s.rules_decision.reasons)}"
            )
        if state is ApplicationState.APPROVED and amount is not None:
            lines.append(f"approved amount {amount}")
        if s.failure:
            lines.append(f"failure: {s.failure}")
        workflow.set_current_details("\n\n".join(lines))
