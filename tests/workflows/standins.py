"""Recording stand-ins for every back-office client, idempotent by key like the real systems.

The activity classes under test are fiflow's own; only the HTTP clients below them are
replaced by these objects, which record each call (and its idempotency key).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fiflow.domain.alerts import Transaction
from fiflow.domain.credit import (
    BureauReport,
    CustomerSummary,
    OpenedAccount,
    StatementPage,
    StatementRow,
)
from fiflow.domain.customers import Customer
from fiflow.domain.follow_ups import Ticket
from fiflow.integrations.http import BusinessError, TransientError

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def bureau_report(score: int, kind: str = "soft", debt: str = "400") -> BureauReport:
    """A bureau answer with this score."""
    return BureauReport(
        pull_id=f"pull-{uuid.uuid4().hex[:8]}",
        kind=kind,  # type: ignore[arg-type]
        score=score,
        monthly_debt_payments=Decimal(debt),
        open_tradelines=4,
        delinquencies_24m=0,
        recent_inquiries=1,
        pulled_at=NOW,
    )


@dataclass
class Call:
    """One recorded back-office write."""

    system: str
    key: str
    body: dict[str, Any]


@dataclass
class Backoffice:
    """Recording stand-ins for every back-office client; writes are idempotent by key."""

    customers: dict[str, Customer] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    sms: list[Call] = field(default_factory=list)
    push: list[Call] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # system -> transient failures left

    def _maybe_fail(self, system: str) -> None:
        left = self.failures.get(system, 0)
        if left:
            self.failures[system] = left - 1
            raise TransientError(system, "HTTP 500 injected")

    def _write(self, system: str, key: str, body: dict[str, Any]) -> str:
        self._maybe_fail(system)
        if not any(c.system == system and c.key == key for c in self.calls):
            self.calls.append(Call(system, key, body))
        return f"{system}-{len(self.calls)}"

    def of(self, system: str) -> list[Call]:
        """Recorded writes to one system."""
        return [c for c in self.calls if c.system == system]

    # CRM
    async def get_customer(self, customer_id: str) -> Customer:
        self._maybe_fail("crm")
        if customer_id not in self.customers:
            raise BusinessError("crm", "HTTP 404 unknown customer", status=404, code="not_found")
        return self.customers[customer_id]

    async def add_note(self, customer_id: str, text: str, category: str, key: str) -> str:
        return self._write("crm", key, {"customer_id": customer_id, "text": text})

    # fraud, cards, contact center
    async def record_outcome(
        self, case_ref: str, customer_id: str, outcome: str, alert_type: str, key: str
    ) -> str:
        return self._write("fraud", key, {"case_ref": case_ref, "outcome": outcome})

    async def set_blocked(
        self, customer_id: str, card_last4: str, blocked: bool, reason: str, key: str
    ) -> str:
        self._write("card", key, {"card_last4": card_last4, "blocked": blocked})
        return "blocked" if blocked else "active"

    async def schedule_callback(
        self, customer_id: str, reason: str, priority: str, reference: str, key: str
    ) -> str:
        return self._write("contact_center", key, {"reason": reason, "priority": priority})

    # messaging
    async def send(self, *args: Any) -> str:
        if len(args) == 3:  # SmsClient.send(to, body, key)
            to, body, key = args
            self._maybe_fail("sms")
            if not any(m.key == key for m in self.sms):
                self.sms.append(Call("sms", key, {"to": to, "body": body}))
            return f"SM{len(self.sms)}"
        device, title, body, actions, data, key = args
        self._maybe_fail("push")
        if not any(m.key == key for m in self.push):
            self.push.append(Call("push", key, {"device_id": device, "body": body, **data}))
        return f"push-{len(self.push)}"

    def sms_to(self, phone: str) -> list[str]:
        """Bodies of the SMS sent to a number, oldest first."""
        return [m.body["body"] for m in self.sms if m.body["to"] == phone]


@dataclass
class LendingOffice(Backoffice):
    """Adds the credit bureau, core banking and billing to the recording stand-ins."""

    scores: dict[str, int] = field(default_factory=dict)
    pulls: list[tuple[str, str]] = field(default_factory=list)  # (kind, key), effective only
    pull_attempts: int = 0
    summaries: dict[str, CustomerSummary] = field(default_factory=dict)
    rows: dict[str, list[StatementRow]] = field(default_factory=dict)
    page_requests: list[str | None] = field(default_factory=list)
    accounts: dict[str, str] = field(default_factory=dict)  # account id -> status
    billing: dict[str, str] = field(default_factory=dict)  # billing account id -> status
    schedules: list[dict[str, Any]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # "system.method" refused for good
    _answers: dict[str, Any] = field(default_factory=dict)

    def _refused(self, what: str) -> None:
        if what in self.refuse:
            raise BusinessError(
                what.split(".")[0], f"HTTP 422 {what} refused", status=422, code="refused"
            )

    def _once(self, key: str, make: Any) -> Any:
        """The first answer per idempotency key, like the real systems."""
        if key not in self._answers:
            self._answers[key] = make()
        return self._answers[key]

    # bureau
    async def pull(
        self, customer_id: str, kind: str, purpose: str, reference: str, key: str
    ) -> BureauReport:
        self.pull_attempts += 1
        self._maybe_fail("bureau")

        def make() -> BureauReport:
            self.pulls.append((kind, key))
            return bureau_report(self.scores.get(customer_id, 700), kind)

        report: BureauReport = self._once(key, make)
        return report

    # core banking
    async def summary(self, customer_id: str) -> CustomerSummary:
        self._maybe_fail("core_banking")
        return self.summaries[customer_id]

    async def statements(
        self, customer_id: str, months: int, limit: int, cursor: str | None
    ) -> StatementPage:
        self._maybe_fail("core_banking")
        self.page_requests.append(cursor)
        rows = self.rows[customer_id]
        start = int(cursor or 0)
        nxt = start + limit
        return StatementPage(
            items=rows[start:nxt], next_cursor=str(nxt) if nxt < len(rows) else None
        )

    async def open_account(
        self, customer_id: str, product: str, amount: Decimal, reference: str, key: str
    ) -> str:
        self._maybe_fail("core_banking")
        self._refused("core_banking.open_account")

        def make() -> str:
            account_id = f"acct-{len(self.accounts) + 1}"
            self.accounts[account_id] = "open"
            return account_id

        account: str = self._once(key, make)
        return account

    async def find_account(self, key: str) -> OpenedAccount | None:
        self._maybe_fail("core_banking")
        account_id = self._answers.get(key)
        if account_id is None:
            return None
        return OpenedAccount(account_id=account_id, status=self.accounts[account_id])

    async def close_account(self, account_id: str, reason: str, key: str) -> str:
        self._maybe_fail("core_banking")
        self.accounts[account_id] = "closed"
        return "closed"

    # billing
    async def create_account(
        self, customer_id: str, core_account_id: str, product: str, reference: str, key: str
    ) -> str:
        self._maybe_fail("billing")
        self._refused("billing.create_account")

        def make() -> str:
            billing_id = f"bill-{len(self.billing) + 1}"
            self.billing[billing_id] = "active"
            return billing_id

        billing: str = self._once(key, make)
        return billing

    async def add_schedule(
        self,
        billing_account_id: str,
        kind: str,
        day_of_month: int,
        amount: Decimal | None,
        key: str,
    ) -> str:
        self._maybe_fail("billing")
        self._refused("billing.add_schedule")

        def make() -> str:
            self.schedules.append(
                {"billing": billing_account_id, "kind": kind, "day": day_of_month, "amount": amount}
            )
            return f"sched-{len(self.schedules)}"

        schedule: str = self._once(key, make)
        return schedule

    async def cancel_account(self, billing_account_id: str, reason: str, key: str) -> str:
        self._maybe_fail("billing")
        self.billing[billing_account_id] = "cancelled"
        return "cancelled"

    # CRM tickets
    tickets: dict[str, Ticket] = field(default_factory=dict)
    transactions: dict[str, list[Transaction]] = field(default_factory=dict)

    async def create_ticket(
        self, customer_id: str, subject: str, category: str, description: str, key: str
    ) -> Ticket:
        self._maybe_fail("crm")

        def make() -> Ticket:
            ticket = Ticket(
                ticket_id=f"tkt-{len(self.tickets) + 1}",
                customer_id=customer_id,
                subject=subject,
                category=category,
                status="open",
            )
            self.tickets[ticket.ticket_id] = ticket
            return ticket

        ticket: Ticket = self._once(key, make)
        return ticket

    async def get_ticket(self, ticket_id: str) -> Ticket:
        self._maybe_fail("crm")
        if ticket_id not in self.tickets:
            raise BusinessError("crm", "HTTP 404 no ticket", status=404, code="ticket_not_found")
        return self.tickets[ticket_id]

    def resolve(self, ticket_id: str) -> None:
        """An agent resolves the ticket in the CRM."""
        self.tickets[ticket_id] = self.tickets[ticket_id].model_copy(update={"status": "resolved"})

    async def latest_transaction(
        self, customer_id: str, card_last4: str | None
    ) -> Transaction | None:
        self._maybe_fail("core_banking")
        txns = [
            t
            for t in self.transactions.get(customer_id, [])
            if card_last4 is None or t.card_last4 == card_last4
        ]
        return txns[0] if txns else None

    def notes(self) -> list[str]:
        """CRM note texts, oldest first."""
        return [c.body["text"] for c in self.of("crm")]
