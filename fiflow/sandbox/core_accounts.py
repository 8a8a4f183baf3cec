"""Core banking's credit accounts opened through the API (the seeded ones never change)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from fiflow.sandbox.ids import new_id
from fiflow.sandbox.timeutil import iso_now

Product = Literal["credit_card", "personal_loan", "overdraft"]


@dataclass
class CoreAccount:
    """A credit account: open until closed, never reopened."""

    account_id: str
    customer_id: str
    product: Product
    amount: float
    currency: str
    reference: str
    status: Literal["open", "closed"]
    opened_at: str
    closed_at: str | None = None
    close_reason: str | None = None
    # The Idempotency-Key it was opened with: a caller whose opening timed out finds it by that.
    idempotency_key: str | None = None

    def opened_view(self) -> dict[str, Any]:
        """The response to opening it."""
        return {
            "account_id": self.account_id,
            "customer_id": self.customer_id,
            "product": self.product,
            "amount": self.amount,
            "currency": self.currency,
            "status": "open",
            "opened_at": self.opened_at,
        }

    def summary_view(self) -> dict[str, Any]:
        """Its entry in the customer summary, shaped like a seeded account's."""
        # A loan is paid out at opening, so the customer owes the principal; a limit is unused.
        balance = -self.amount if self.product == "personal_loan" else 0.0
        return {
            "account_id": self.account_id,
            "type": self.product,
            "status": self.status,
            "currency": self.currency,
            "opened_on": self.opened_at[:10],
            "balance": balance,
        }

    def lookup_view(self) -> dict[str, Any]:
        """What a look-up by idempotency key answers."""
        return {
            "account_id": self.account_id,
            "customer_id": self.customer_id,
            "product": self.product,
            "amount": self.amount,
            "currency": self.currency,
            "reference": self.reference,
            "status": self.status,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
        }

    def view(self) -> dict[str, Any]:
        """Everything about it, for inspection."""
        return asdict(self)


class CoreAccounts:
    """API-opened accounts in opening order."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every opened account."""
        self._accounts: dict[str, CoreAccount] = {}

    def open(
        self,
        customer_id: str,
        product: Product,
        amount: float,
        currency: str,
        reference: str,
        idempotency_key: str | None = None,
    ) -> CoreAccount:
        """Open a new account."""
        account = CoreAccount(
            account_id=new_id("acct"),
            customer_id=customer_id,
            product=product,
            amount=amount,
            currency=currency,
            reference=reference,
            status="open",
            opened_at=iso_now(),
            idempotency_key=idempotency_key,
        )
        self._accounts[account.account_id] = account
        return account

    def by_key(self, idempotency_key: str) -> CoreAccount | None:
        """The account opened with that Idempotency-Key, if any."""
        return next(
            (a for a in self._accounts.values() if a.idempotency_key == idempotency_key), None
        )

    def get(self, account_id: str) -> CoreAccount | None:
        """The opened account with that ID, if any."""
        return self._accounts.get(account_id)

    def close(self, account: CoreAccount, reason: str) -> CoreAccount:
        """Close it; closing a closed account changes nothing (level-triggered)."""
        if account.status != "closed":
            account.status, account.closed_at, account.close_reason = "closed", iso_now(), reason
        return account

    def for_customer(self, customer_id: str | None = None) -> list[CoreAccount]:
        """Opened accounts, optionally of one customer."""
        return [
            a
            for a in self._accounts.values()
            if customer_id is None or a.customer_id == customer_id
        ]
