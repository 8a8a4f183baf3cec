"""Core banking: summaries, paged statements, card transactions, opening and closing accounts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from fiflow.sandbox.card_transactions import recent_transactions
from fiflow.sandbox.credit_profiles import CreditProfile
from fiflow.sandbox.errors import SandboxError, card_not_found, customer_not_found
from fiflow.sandbox.models import OpenAccountRequest, ReasonRequest
from fiflow.sandbox.months import last_complete_month
from fiflow.sandbox.pipeline import handle_call, idempotency_key
from fiflow.sandbox.seed import Customer
from fiflow.sandbox.state import SandboxState, get_state
from fiflow.sandbox.statement_pages import statement_page

router = APIRouter(prefix="/core-banking", tags=["core_banking"])


def _customer(state: SandboxState, customer_id: str) -> tuple[Customer, CreditProfile]:
    customer = state.directory.customer(customer_id)
    profile = state.profiles.get(customer_id)
    if customer is None or profile is None:
        raise customer_not_found(customer_id)
    return customer, profile


@router.get("/customers/{customer_id}/summary")
async def customer_summary(
    customer_id: str, request: Request, state: SandboxState = Depends(get_state)
) -> Response:
    """Since when the customer banks here, and their accounts with balances."""

    def action() -> tuple[int, Any]:
        customer, profile = _customer(state, customer_id)
        since = profile.customer_since(state.today()).isoformat()
        balances = state.statements.history(profile, customer.accounts).balances
        seeded = [
            {
                "account_id": a.account_id,
                "type": a.type,
                "status": "open",
                "currency": a.currency,
                "opened_on": since,
                "balance": balances[a.account_id],
            }
            for a in customer.accounts
        ]
        opened = [a.summary_view() for a in state.core_accounts.for_customer(customer_id)]
        return 200, {
            "customer_id": customer_id,
            "customer_since": since,
            "accounts": seeded + opened,
        }

    return await handle_call(state, request, "core_banking", action, write=False)


@router.get("/customers/{customer_id}/statements")
async def statements(
    customer_id: str,
    request: Request,
    months: int = Query(default=12, ge=1, le=36, description="the last N complete months"),
    limit: int = Query(default=25, ge=1, le=100, description="rows per page"),
    cursor: str | None = Query(default=None, description="next_cursor of the previous page"),
    state: SandboxState = Depends(get_state),
) -> Response:
    """Monthly rows of the customer's seeded accounts, newest month first, paged."""

    def action() -> tuple[int, Any]:
        customer, profile = _customer(state, customer_id)
        history = state.statements.history(profile, customer.accounts)
        latest = last_complete_month(state.today())
        return 200, statement_page(history, customer_id, months, limit, cursor, latest)

    return await handle_call(state, request, "core_banking", action, write=False)


@router.get("/customers/{customer_id}/transactions")
async def card_transactions(
    customer_id: str,
    request: Request,
    limit: int = Query(default=10, ge=1, le=50, description="the newest N transactions"),
    card_last4: str | None = Query(default=None, pattern=r"^[0-9]{4}$", description="one card"),
    state: SandboxState = Depends(get_state),
) -> Response:
    """The customer's card purchases of the last 30 days, newest first."""

    def action() -> tuple[int, Any]:
        customer, _ = _customer(state, customer_id)
        if card_last4 is not None and state.directory.card(customer_id, card_last4) is None:
            raise card_not_found(customer_id, card_last4)
        found = recent_transactions(state.config.seed, customer, state.today(), card_last4, limit)
        return 200, {"items": [t.view() for t in found]}

    return await handle_call(state, request, "core_banking", action, write=False)


@router.post("/accounts", status_code=201)
async def open_account(
    command: OpenAccountRequest, request: Request, state: SandboxState = Depends(get_state)
) -> Response:
    """Open a credit card, personal loan or overdraft for a customer."""

    def action() -> tuple[int, Any]:
        if state.directory.customer(command.customer_id) is None:
            raise customer_not_found(command.customer_id)
        account = state.core_accounts.open(
            command.customer_id,
            command.product,
            command.amount,
            command.currency,
            command.reference,
            idempotency_key(request),
        )
        return 201, account.opened_view()

    return await handle_call(state, request, "core_banking", action, body=await request.json())


@router.get("/accounts")
async def find_accounts(
    request: Request,
    idempotency_key: str = Query(
        min_length=1, max_length=200, description="the Idempotency-Key an opening was sent with"
    ),
    state: SandboxState = Depends(get_state),
) -> Response:
    """The account opened with that Idempotency-Key (none or one): how a caller whose opening
    timed out learns whether it took effect."""

    def action() -> tuple[int, Any]:
        account = state.core_accounts.by_key(idempotency_key)
        return 200, {"items": [account.lookup_view()] if account is not None else []}

    return await handle_call(state, request, "core_banking", action, write=False)


@router.post("/accounts/{account_id}/close")
async def close_account(
    account_id: str,
    command: ReasonRequest,
    request: Request,
    state: SandboxState = Depends(get_state),
) -> Response:
    """Close an account opened through this API (closing it again succeeds)."""

    def action() -> tuple[int, Any]:
        account = state.core_accounts.get(account_id)
        if account is None:
            if state.directory.account(account_id) is not None:
                # Seeded accounts are the fixed backdrop of every test: they never change.
                raise SandboxError(
                    409,
                    "account_not_closable",
                    f"Account {account_id!r} was not opened through this API.",
                )
            raise SandboxError(404, "account_not_found", f"No account with id {account_id!r}.")
        state.core_accounts.close(account, command.reason)
        return 200, {"account_id": account_id, "status": "closed", "closed_at": account.closed_at}

    return await handle_call(state, request, "core_banking", action, body=await request.json())
