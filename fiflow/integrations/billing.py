"""Billing client: billing accounts and their statement / recurring-charge schedules."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from fiflow.integrations.http import idem, send

SYSTEM = "billing"


class BillingClient:
    """Typed client for the billing system's HTTP API."""

    def __init__(self, http: httpx.AsyncClient):
        self._http = http

    async def create_account(
        self, customer_id: str, core_account_id: str, product: str, reference: str, key: str
    ) -> str:
        """Create a billing account for a core account; returns its ID."""
        body = {
            "customer_id": customer_id,
            "core_account_id": core_account_id,
            "product": product,
            "currency": "USD",
            "reference": reference,
        }
        data = await send(
            SYSTEM, self._http, "POST", "/billing/accounts", json=body, headers=idem(key)
        )
        return str(data["billing_account_id"])

    async def add_schedule(
        self,
        billing_account_id: str,
        kind: str,
        day_of_month: int,
        amount: Decimal | None,
        key: str,
    ) -> str:
        """Add a statement or recurring-charge schedule; returns its ID."""
        body: dict[str, Any] = {"kind": kind, "day_of_month": day_of_month}
        if amount is not None:
            body["amount"] = float(amount)
        data = await send(
            SYSTEM,
            self._http,
            "POST",
            f"/billing/accounts/{billing_account_id}/schedules",
            json=body,
            headers=idem(key),
        )
        return str(data["schedule_id"])

    async def cancel_account(self, billing_account_id: str, reason: str, key: str) -> str:
        """Cancel a billing account and its schedules; returns its status."""
        data = await send(
            SYSTEM,
            self._http,
            "POST",
            f"/billing/accounts/{billing_account_id}/cancel",
            json={"reason": reason},
            headers=idem(key),
        )
        return str(data["status"])
