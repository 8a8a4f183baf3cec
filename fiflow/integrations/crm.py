"""CRM client: customer profiles and interaction notes."""

from __future__ import annotations

import httpx

from fiflow.domain.customers import Customer
from fiflow.domain.follow_ups import Ticket
from fiflow.integrations.http import idem, send

SYSTEM = "crm"


class CrmClient:
    """Typed client for the CRM's HTTP API."""

    def __init__(self, http: httpx.AsyncClient):
        self._http = http

    async def get_customer(self, customer_id: str) -> Customer:
        """The customer's profile; BusinessError(404) when the CRM does not know them."""
        data = await send(SYSTEM, self._http, "GET", f"/crm/customers/{customer_id}")
        return Customer.model_validate(data)

    async def add_note(self, customer_id: str, text: str, category: str, key: str) -> str:
        """Add an interaction note; returns the note ID."""
        data = await send(
            SYSTEM,
            self._http,
            "POST",
            f"/crm/customers/{customer_id}/notes",
            json={"text": text, "category": category},
            headers=idem(key),
        )
        return str(data["note_id"])

    async def find_by_phone(self, phone: str) -> Customer | None:
        """The customer with this phone number, if the CRM knows one."""
        data = await send(SYSTEM, self._http, "GET", "/crm/customers", params={"phone": phone})
        return Customer.model_validate(data[0]) if data else None

    async def create_ticket(
        self, customer_id: str, subject: str, category: str, description: str, key: str
    ) -> Ticket:
        """Open a support ticket."""
        data = await send(
            SYSTEM,
            self._http,
            "POST",
            f"/crm/customers/{customer_id}/tickets",
            json={"subject": subject, "category": category, "description": description},
            headers=idem(key),
        )
        return Ticket.model_validate(data)

    async def get_ticket(self, ticket_id: str) -> Ticket:
        """One ticket; BusinessError(404) for an unknown one."""
        return Ticket.model_validate(
            await send(SYSTEM, self._http, "GET", f"/crm/tickets/{ticket_id}")
        )
