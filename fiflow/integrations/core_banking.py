"""Core-banking client: account history (paged) and opening and closing accounts."""

from __future__ import annotations

from decimal import Decimal

import httpx

from fiflow.domain.alerts import Transaction
from fiflow.domain.credit import CustomerSummary, OpenedAccount, StatementPage
from fiflow.integrations.http import idem, send

SYSTEM = "core_banking"


class CoreBankingClient:
    """Typed client for the core banking system's HTTP API."""

    def __init__(self, http: httpx.AsyncClient):
        self._http = http

    async def summary(self, customer_id: str) -> CustomerSummary:
        """The customer's accounts and relationship start."""
        path = f"/core-banking/customers/{customer_id}/summary"
        return CustomerSummary.model_validate(await send(SYSTEM, self._http, "GET", path))

    async def statements(
        self, customer_id: str, months: int, limit: int, cursor: str | None
    ) -> StatementPage:
        """One page of the last `months` months of statements."""
        params: dict[str, str | int] = {"months": months, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        path = f"/core-banking/customers/{customer_id}/statements"
        return StatementPage.model_validate(
            await send(SYSTEM, self._http, "GET", path, params=params)
        )

    async def open_account(
        self, customer_id: str, product: str, amount: Decimal, reference: str, key: str
    ) -> str:
        """Open a credit account; returns its ID."""
        body = {
            "customer_id": customer_id,
            "product": product,
            "amount": float(amount),
            "currency": "USD",
            "reference": reference,
        }
        data = await send(
            SYSTEM, self._http, "POST", "/core-banking/accounts", json=body, headers=idem(key)
        )
        return str(data["account_id"])

    async def find_account(self, key: str) -> OpenedAccount | None:
        """The account an opening sent with this idempotency key created, if it took effect."""
        data = await send(
            SYSTEM, self._http, "GET", "/core-banking/accounts", params={"idempotency_key": key}
        )
        items = data.get("items", []) if isinstance(data, dict) else []
        if not items:
            return None
        return OpenedAccount(account_id=str(items[0]["account_id"]), status=items[0]["status"])

    async def close_account(self, account_id: str, reason: str, key: str) -> str:
        """Close an account (closing a closed one succeeds); returns its status."""
        data = await send(
            SYSTEM,
            self._http,
            "POST",
            f"/core-banking/accounts/{account_id}/close",
            json={"reason": reason},
            headers=idem(key),
        )
        return str(data["status"])

    async def latest_transaction(
        self, customer_id: str, card_last4: str | None
    ) -> Transaction | None:
        """The customer's most recent card transaction (on that card, if given)."""
        params: dict[str, str | int] = {"limit": 1}
        if card_last4:
            params["card_last4"] = card_last4
        path = f"/core-banking/customers/{customer_id}/transactions"
        data = await send(SYSTEM, self._http, "GET", path, params=params)
        items = data.get("items", []) if isinstance(data, dict) else []
        if not items:
            return None
        item = items[0]
        return Transaction(
            amount=Decimal(str(item["amount"])).quantize(Decimal("0.01")),
            currency=item["currency"],
            merchant=str(item["merchant"])[:80],
            occurred_at=item["occurred_at"],
            card_last4=item["card_last4"],
        )
