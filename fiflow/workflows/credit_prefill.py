"""CreditPrefillWorkflow: prepare a credit application from what the bank already knows."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from fiflow.activities.rules import LoadCreditRules, RuleActivities
    from fiflow.domain.credit import AccountHistoryInput
    from fiflow.domain.credit_prefill import (
        CreditPrefill,
        CreditPrefillInput,
        PrefillStatus,
        suggest_amount,
    )
    from fiflow.workflows.account_history import AccountHistoryWorkflow
    from fiflow.workflows.failures import cause_of
    from fiflow.workflows.options import QUICK


@workflow.defn
class CreditPrefillWorkflow:
    """Reads the relationship (no credit pull) and proposes the application's first values."""

    @workflow.init
    def __init__(self, inp: CreditPrefillInput) -> None:
        self._status = PrefillStatus(prefill_id=inp.prefill_id)

    @workflow.query(name="status")
    def status(self) -> PrefillStatus:
        """Preparing, or the pre-fill."""
        return self._status

    @workflow.run
    async def run(self, inp: CreditPrefillInput) -> PrefillStatus:
        """The product's rules, the account history, then the proposal."""
        rules = await workflow.execute_local_activity_method(
            RuleActivities.load_credit_rules, LoadCreditRules(product=inp.product), **QUICK
        )
        summary = None
        try:
            history = await workflow.execute_child_workflow(
                AccountHistoryWorkflow.run,
                AccountHistoryInput(
                    application_id=inp.prefill_id,
                    customer_id=inp.customer_id,
                    months=rules.history.months,
                    page_size=rules.history.page_size,
                ),
                id=f"{workflow.info().workflow_id}-account-history",
            )
            summary = history.summary if history.status == "completed" else None
        except ChildWorkflowError as exc:
            # A pre-fill without history is still a pre-fill: the amount starts at the floor.
            workflow.logger.warning("account history unavailable: %s", cause_of(exc))
        terms = rules.product.term_months
        self._status.prefill = CreditPrefill(
            prefill_id=inp.prefill_id,
            customer_id=inp.customer_id,
            product=inp.product,
            rule_set_version=rules.version,
            suggested_amount=suggest_amount(rules.product, summary),
            term_months=terms.min if terms else None,
            customer_since=summary.customer_since if summary else None,
            tenure_months=summary.tenure_months if summary else None,
            history_available=summary is not None,
            prepared_at=workflow.now(),
        )
        self._status.state = "ready"
        workflow.set_current_details(
            f"**ready** · {inp.product.value} · suggested {self._status.prefill.suggested_amount}"
        )
        return self._status
