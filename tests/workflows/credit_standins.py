"""Stand-in child workflows for the parent's tests, registered under the real children's names.

A workflow cannot read test memory (the sandbox re-imports this module), so each stand-in
asks a test activity for its script: the result to return and how long to take.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from fiflow.domain.credit import (
        AccountHistoryInput,
        AccountHistoryResult,
        CreditCheckInput,
        CreditCheckResult,
    )


class ScriptedCredit(BaseModel):
    """What the stand-in credit check returns, after how long."""

    result: CreditCheckResult
    delay_seconds: float = 0


class ScriptedHistory(BaseModel):
    """What the stand-in account history returns, after how long."""

    result: AccountHistoryResult
    delay_seconds: float = 0


@dataclass
class ChildScripts:
    """Per-application scripts for the stand-ins, and the inputs they were started with."""

    credit: dict[str, ScriptedCredit] = field(default_factory=dict)
    history: dict[str, ScriptedHistory] = field(default_factory=dict)
    credit_inputs: list[CreditCheckInput] = field(default_factory=list)
    history_inputs: list[AccountHistoryInput] = field(default_factory=list)

    @activity.defn(name="scripted_credit_check")
    async def credit_check(self, inp: CreditCheckInput) -> ScriptedCredit:
        """The script for this application's credit check."""
        self.credit_inputs.append(inp)
        return self.credit[inp.application_id]

    @activity.defn(name="scripted_account_history")
    async def account_history(self, inp: AccountHistoryInput) -> ScriptedHistory:
        """The script for this application's account history."""
        self.history_inputs.append(inp)
        return self.history[inp.application_id]


# Names the stand-ins register under (their histories are never replay material).
STAND_IN_TYPES = frozenset({"CreditCheckWorkflow", "AccountHistoryWorkflow"})


@workflow.defn(name="CreditCheckWorkflow")
class StandInCreditCheck:
    """Returns the scripted credit check."""

    @workflow.run
    async def run(self, inp: CreditCheckInput) -> CreditCheckResult:
        script = await workflow.execute_activity_method(
            ChildScripts.credit_check, inp, start_to_close_timeout=timedelta(seconds=10)
        )
        if script.delay_seconds:
            await workflow.sleep(script.delay_seconds)
        return script.result


@workflow.defn(name="AccountHistoryWorkflow")
class StandInAccountHistory:
    """Returns the scripted account history."""

    @workflow.run
    async def run(self, inp: AccountHistoryInput) -> AccountHistoryResult:
        script = await workflow.execute_activity_method(
            ChildScripts.account_history, inp, start_to_close_timeout=timedelta(seconds=10)
        )
        if script.delay_seconds:
            await workflow.sleep(script.delay_seconds)
        return script.result
