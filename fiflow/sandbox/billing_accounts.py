"""The billing system's state: billing accounts and their schedules."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from fiflow.sandbox.ids import new_id
from fiflow.sandbox.timeutil import iso_now

ScheduleKind = Literal["statement", "recurring_charge"]


@dataclass
class Schedule:
    """A monthly statement run or recurring charge on a billing account."""

    schedule_id: str
    kind: ScheduleKind
    day_of_month: int
    amount: float | None
    description: str | None
    status: Literal["active", "cancelled"] = "active"


@dataclass
class BillingAccount:
    """What billing keeps for one core account."""

    billing_account_id: str
    customer_id: str
    core_account_id: str
    product: str
    currency: str
    reference: str
    status: Literal["active", "cancelled"]
    created_at: str
    cancelled_at: str | None = None
    cancel_reason: str | None = None
    schedules: list[Schedule] = field(default_factory=list)

    def status_view(self) -> dict[str, Any]:
        """The response to creating or cancelling it."""
        return {
            "billing_account_id": self.billing_account_id,
            "customer_id": self.customer_id,
            "core_account_id": self.core_account_id,
            "status": self.status,
        }

    def view(self) -> dict[str, Any]:
        """Everything about it, schedules included, for inspection."""
        return asdict(self)


class BillingBook:
    """Billing accounts in creation order."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every billing account."""
        self._accounts: dict[str, BillingAccount] = {}

    def create(
        self, customer_id: str, core_account_id: str, product: str, currency: str, reference: str
    ) -> BillingAccount:
        """Create an active billing account."""
        account = BillingAccount(
            billing_account_id=new_id("bill"),
            customer_id=customer_id,
            core_account_id=core_account_id,
            product=product,
            currency=currency,
            reference=reference,
            status="active",
            created_at=iso_now(),
        )
        self._accounts[account.billing_account_id] = account
        return account

    def get(self, billing_account_id: str) -> BillingAccount | None:
        """The billing account with that ID, if any."""
        return self._accounts.get(billing_account_id)

    @staticmethod
    def add_schedule(
        account: BillingAccount,
        kind: ScheduleKind,
        day_of_month: int,
        amount: float | None,
        description: str | None,
    ) -> Schedule:
        """Add a schedule to an active account."""
        schedule = Schedule(new_id("sched"), kind, day_of_month, amount, description)
        account.schedules.append(schedule)
        return schedule

    @staticmethod
    def cancel(account: BillingAccount, reason: str) -> BillingAccount:
        """Cancel it and its schedules; cancelling again changes nothing (level-triggered)."""
        if account.status != "cancelled":
            account.status, account.cancelled_at, account.cancel_reason = (
                "cancelled",
                iso_now(),
                reason,
            )
            for schedule in account.schedules:
                schedule.status = "cancelled"
        return account

    def for_customer(self, customer_id: str | None = None) -> list[BillingAccount]:
        """Billing accounts, optionally of one customer."""
        return [
            a
            for a in self._accounts.values()
            if customer_id is None or a.customer_id == customer_id
        ]
