"""AccountHistoryWorkflow: page through the customer's statements and summarise them."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from fiflow.activities.credit import (
        CoreBankingActivities,
        GetCustomerSummary,
        GetStatementPage,
    )
    from fiflow.domain.credit import (
        AccountHistoryInput,
        AccountHistoryResult,
        CallRecord,
        StatementRow,
    )
    from fiflow.domain.credit_history import summarise_history
    from fiflow.workflows.failures import cause_of
    from fiflow.workflows.options import BACKOFFICE

# A runaway cursor must not grow the history without bound: 36 months of a customer with
# a dozen accounts is about 430 rows, five pages of 100.
MAX_PAGES = 200


class CoreBankingUnavailable(Exception):
    """Core banking did not answer within the retry bound."""


@workflow.defn
class AccountHistoryWorkflow:
    """Reads tenure, balances, overdrafts and returned payments from core banking."""

    @workflow.run
    async def run(self, inp: AccountHistoryInput) -> AccountHistoryResult:
        """Every page of the last N months, then one summary."""
        started = workflow.now()
        self._calls: list[CallRecord] = []
        try:
            summary = await self._read(
                "summary",
                CoreBankingActivities.summary,
                GetCustomerSummary(customer_id=inp.customer_id),
            )
            rows: list[StatementRow] = []
            cursor: str | None = None
            pages = 0
            while True:
                page = await self._read(
                    f"statements_page_{pages + 1}",
                    CoreBankingActivities.statement_page,
                    GetStatementPage(
                        customer_id=inp.customer_id,
                        months=inp.months,
                        limit=inp.page_size,
                        cursor=cursor,
                    ),
                )
                pages += 1
                rows.extend(page.items)
                workflow.set_current_details(f"read {pages} page(s), {len(rows)} statement rows")
                if not page.next_cursor:
                    break
                if pages >= MAX_PAGES:
                    raise CoreBankingUnavailable(f"more than {MAX_PAGES} pages of statements")
                cursor = page.next_cursor
        except CoreBankingUnavailable as exc:
            return AccountHistoryResult(
                status="core_banking_unavailable",
                detail=str(exc),
                calls=self._calls,
                started_at=started,
                completed_at=workflow.now(),
            )
        return AccountHistoryResult(
            status="completed",
            summary=summarise_history(
                summary, rows, months=inp.months, pages=pages, as_of=workflow.now().date()
            ),
            calls=self._calls,
            started_at=started,
            completed_at=workflow.now(),
        )

    async def _read(self, step: str, method, arg):  # type: ignore[no-untyped-def]
        try:
            result = await workflow.execute_activity_method(method, arg, **BACKOFFICE)
        except ActivityError as exc:
            self._record(step, "failed", cause_of(exc))
            raise CoreBankingUnavailable(f"{step}: {cause_of(exc)}") from exc
        self._record(step, "done", "")
        return result

    def _record(self, step: str, outcome: str, detail: str) -> None:
        self._calls.append(
            CallRecord(
                system="core_banking", step=step, outcome=outcome, detail=detail, at=workflow.now()
            )
        )
