"""CreditCheckWorkflow: a soft pull, then a hard pull only where the rules need one."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from fiflow.activities.credit import BureauActivities, PullCredit
    from fiflow.domain.credit import (
        BureauReport,
        CallRecord,
        CreditCheckInput,
        CreditCheckResult,
        HardPull,
    )
    from fiflow.domain.keys import credit_workflow_id, idempotency_key
    from fiflow.workflows.failures import cause_of

# An unavailable bureau is retried with backoff until the rules' deadline, never longer.
BUREAU_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)


class BureauUnavailable(Exception):
    """The bureau did not answer within the deadline (or refused the request)."""


@workflow.defn
class CreditCheckWorkflow:
    """Pulls the applicant's credit file; the parent decides what the result means."""

    @workflow.run
    async def run(self, inp: CreditCheckInput) -> CreditCheckResult:
        """Soft pull, then a hard pull when required, consented and worth it."""
        started = workflow.now()
        self._inp = inp
        self._deadline = started + timedelta(seconds=inp.bureau_deadline)
        self._calls: list[CallRecord] = []
        result = CreditCheckResult(status="completed", started_at=started, completed_at=started)
        try:
            result.soft = await self._pull("soft")
            if not inp.hard_pull_required:
                result.hard_pull = HardPull.NOT_REQUIRED
            elif result.soft.score < inp.hard_pull_min_score:
                result.hard_pull = HardPull.SKIPPED_LOW_SCORE
            elif not inp.consent_to_pull:
                result.hard_pull = HardPull.SKIPPED_NO_CONSENT
            else:
                result.hard = await self._pull("hard")
                result.hard_pull = HardPull.DONE
        except BureauUnavailable as exc:
            result.status = "bureau_unavailable"
            result.detail = str(exc)
        result.calls = self._calls
        result.completed_at = workflow.now()
        workflow.set_current_details(
            f"credit check {result.status}; hard pull: {result.hard_pull.value}"
        )
        return result

    async def _pull(self, kind: Literal["soft", "hard"]) -> BureauReport:
        remaining = self._deadline - workflow.now()
        if remaining <= timedelta(0):
            raise BureauUnavailable(f"bureau deadline passed before the {kind} pull")
        # The key is the application's, not this run's: a re-run, a retry or a crashed
        # worker's replacement asks for the same pull, and the bureau answers it once.
        key = idempotency_key(credit_workflow_id(self._inp.application_id), f"{kind}_pull")
        try:
            report = await workflow.execute_activity_method(
                BureauActivities.pull,
                PullCredit(
                    customer_id=self._inp.customer_id,
                    kind=kind,
                    purpose="credit_application",
                    reference=self._inp.application_id,
                    idempotency_key=key,
                ),
                start_to_close_timeout=timedelta(seconds=15),
                schedule_to_close_timeout=remaining,
                retry_policy=BUREAU_RETRY,
            )
        except ActivityError as exc:
            self._record(kind, key, "failed", cause_of(exc))
            raise BureauUnavailable(f"{kind} pull: {cause_of(exc)}") from exc
        self._record(kind, key, "done", f"score {report.score}")
        return report

    def _record(self, kind: str, key: str, outcome: str, detail: str) -> None:
        self._calls.append(
            CallRecord(
                system="bureau",
                step=f"{kind}_pull",
                idempotency_key=key,
                outcome=outcome,
                detail=detail,
                at=workflow.now(),
            )
        )
