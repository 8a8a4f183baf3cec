"""The CRM's support tickets: opened through the API, moved along by callers or agents."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from fiflow.sandbox.ids import new_id
from fiflow.sandbox.timeutil import iso_now

TicketStatus = Literal["open", "pending", "resolved", "closed"]
TicketPriority = Literal["low", "normal", "high"]
# Who moved a ticket: a caller of the CRM API, or an agent in the CRM's own UI (the
# sandbox's inspection helper stands in for the agent).
ChangedBy = Literal["api", "agent"]
# The statuses in which the customer's problem counts as dealt with.
DONE: frozenset[str] = frozenset({"resolved", "closed"})


@dataclass
class StatusChange:
    """One move of a ticket from one status to another."""

    status: TicketStatus
    note: str | None
    by: ChangedBy
    at: str


@dataclass
class Ticket:
    """A customer's support ticket."""

    ticket_id: str
    customer_id: str
    subject: str
    category: str
    description: str | None
    priority: TicketPriority
    status: TicketStatus
    created_at: str
    updated_at: str
    idempotency_key: str | None
    resolved_at: str | None = None
    history: list[StatusChange] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        """The CRM API's shape of the ticket."""
        return {
            "ticket_id": self.ticket_id,
            "customer_id": self.customer_id,
            "subject": self.subject,
            "category": self.category,
            "priority": self.priority,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "resolved_at": self.resolved_at,
        }

    def full_view(self) -> dict[str, Any]:
        """Everything about it (description, key, status history), for inspection."""
        return asdict(self)


class TicketBook:
    """Tickets in the order they were opened."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget every ticket."""
        self._tickets: dict[str, Ticket] = {}

    def open(
        self,
        customer_id: str,
        subject: str,
        category: str,
        description: str | None,
        priority: TicketPriority,
        idempotency_key: str | None,
    ) -> Ticket:
        """Open a new ticket."""
        now = iso_now()
        ticket = Ticket(
            ticket_id=new_id("tkt"),
            customer_id=customer_id,
            subject=subject,
            category=category,
            description=description,
            priority=priority,
            status="open",
            created_at=now,
            updated_at=now,
            idempotency_key=idempotency_key,
        )
        self._tickets[ticket.ticket_id] = ticket
        return ticket

    def get(self, ticket_id: str) -> Ticket | None:
        """The ticket with that ID, if any."""
        return self._tickets.get(ticket_id)

    @staticmethod
    def set_status(ticket: Ticket, status: TicketStatus, note: str | None, by: ChangedBy) -> Ticket:
        """Move it to `status`; asking for the status it has changes nothing (level-triggered)."""
        if ticket.status == status:
            return ticket
        now = iso_now()
        if status not in DONE:
            ticket.resolved_at = None  # reopened: the problem is back
        elif ticket.resolved_at is None:
            # Closing a resolved ticket keeps the time the problem was actually resolved.
            ticket.resolved_at = now
        ticket.status, ticket.updated_at = status, now
        ticket.history.append(StatusChange(status, note, by, now))
        return ticket

    def for_customer(
        self, customer_id: str | None = None, status: TicketStatus | None = None
    ) -> list[Ticket]:
        """Tickets in opening order, optionally of one customer and/or in one status."""
        return [
            t
            for t in self._tickets.values()
            if (customer_id is None or t.customer_id == customer_id)
            and (status is None or t.status == status)
        ]
