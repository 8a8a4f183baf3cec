"""Read-only views of the bureau, core banking and billing (never recorded as calls)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from fiflow.sandbox.bureau import PullKind
from fiflow.sandbox.state import SandboxState, get_state

router = APIRouter(prefix="/__sandbox", tags=["sandbox"])


@router.get("/credit-profiles")
async def credit_profiles(state: SandboxState = Depends(get_state)) -> list[dict[str, Any]]:
    """Every customer's credit profile, so tests can pick customers by profile."""
    today = state.today()
    return [p.view(today) for p in state.profiles.values()]


@router.get("/bureau/pulls")
async def bureau_pulls(
    customer_id: str | None = None,
    kind: PullKind | None = None,
    state: SandboxState = Depends(get_state),
) -> list[dict[str, Any]]:
    """Effective pulls in order (no replays, faults or refused calls)."""
    return state.bureau.pulls(customer_id, kind)


@router.get("/core-banking/accounts")
async def core_banking_accounts(
    customer_id: str | None = None, state: SandboxState = Depends(get_state)
) -> list[dict[str, Any]]:
    """Accounts opened through the API, with their status."""
    return [a.view() for a in state.core_accounts.for_customer(customer_id)]


@router.get("/billing/accounts")
async def billing_accounts(
    customer_id: str | None = None, state: SandboxState = Depends(get_state)
) -> list[dict[str, Any]]:
    """Billing accounts with their status and schedules."""
    return [a.view() for a in state.billing.for_customer(customer_id)]
