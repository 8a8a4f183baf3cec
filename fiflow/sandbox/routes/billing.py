"""Billing: billing accounts for core accounts, their schedules, and cancellation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from fiflow.sandbox.billing_accounts import BillingAccount
from fiflow.sandbox.errors import SandboxError, customer_not_found
from fiflow.sandbox.models import BillingAccountRequest, ReasonRequest, ScheduleRequest
from fiflow.sandbox.pipeline import handle_call
from fiflow.sandbox.state import SandboxState, get_state

router = APIRouter(prefix="/billing", tags=["billing"])


def _account(state: SandboxState, billing_account_id: str) -> BillingAccount:
    account = state.billing.get(billing_account_id)
    if account is None:
        raise SandboxError(
            404,
            "billing_account_not_found",
            f"No billing account with id {billing_account_id!r}.",
        )
    return account


@router.post("/accounts", status_code=201)
async def create_account(
    command: BillingAccountRequest, request: Request, state: SandboxState = Depends(get_state)
) -> Response:
    """Create a billing account for a customer's core account."""

    def action() -> tuple[int, Any]:
        if state.directory.customer(command.customer_id) is None:
            raise customer_not_found(command.customer_id)
        account = state.billing.create(
            command.customer_id,
            command.core_account_id,
            command.product,
            command.currency,
            command.reference,
        )
        return 201, account.status_view()

    return await handle_call(state, request, "billing", action, body=await request.json())


@router.post("/accounts/{billing_account_id}/schedules", status_code=201)
async def add_schedule(
    billing_account_id: str,
    command: ScheduleRequest,
    request: Request,
    state: SandboxState = Depends(get_state),
) -> Response:
    """Add a statement or recurring-charge schedule to an active billing account."""

    def action() -> tuple[int, Any]:
        account = _account(state, billing_account_id)
        if account.status == "cancelled":
            raise SandboxError(
                409,
                "billing_account_cancelled",
                f"Billing account {billing_account_id!r} is cancelled.",
            )
        schedule = state.billing.add_schedule(
            account, command.kind, command.day_of_month, command.amount, command.description
        )
        return 201, {
            "schedule_id": schedule.schedule_id,
            "billing_account_id": account.billing_account_id,
            "kind": schedule.kind,
            "day_of_month": schedule.day_of_month,
            "amount": schedule.amount,
        }

    return await handle_call(state, request, "billing", action, body=await request.json())


@router.post("/accounts/{billing_account_id}/cancel")
async def cancel_account(
    billing_account_id: str,
    command: ReasonRequest,
    request: Request,
    state: SandboxState = Depends(get_state),
) -> Response:
    """Cancel a billing account and its schedules (cancelling again succeeds)."""

    def action() -> tuple[int, Any]:
        account = state.billing.cancel(_account(state, billing_account_id), command.reason)
        return 200, {"billing_account_id": account.billing_account_id, "status": account.status}

    return await handle_call(state, request, "billing", action, body=await request.json())
