"""CRM client: customer profiles and interaction notes."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from fiflow.domain.customers import Customer
from fiflow.domain.follow_ups import Ticket
from fiflow.domain.phones import InvalidPhoneNumber, normalise_phone
from fiflow.integrations.http import idem, send

SYSTEM = "crm"
log = logging.getLogger("fiflow.crm")


def customer_from_record(data: Any) -> Customer:
    """A CRM record as a Customer, its phone in E.164; an invalid phone counts as none.

    CRM numbers are typed by people ("+1 202-555-0107"). One that is not a valid number
    must not stop a flow: the customer is simply not reachable by SMS, as if the field
    were empty, and the other channels (or a callback) take over.
    """
    customer = Customer.model_validate(data)
    if customer.phone is None:
        return customer
    try:
        phone: str | None = normalise_phone(customer.phone)
    except InvalidPhoneNumber as exc:
        # The customer ID lets someone fix the record; the number itself stays out of logs.
        log.warning("CRM customer %s: phone ignored, %s", customer.customer_id, exc)
        phone = None
    return customer.model_copy(update={"phone": phone})


class CrmClient:
    """Typed client for the CRM's HTTP API."""

    def __init__(self, http: httpx.AsyncClient):
        self._http = http

    async def get_customer(self, customer_id: str) -> Customer:
        """The customer's profile; BusinessError(404) when the CRM does not know them."""
        data = await send(SYSTEM, self._http, "GET", f"/crm/customers/{customer_id}")
        return customer_from_record(data)

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
        """The customer with this number, if the CRM knows one; InvalidPhoneNumber if bad."""
        number = normalise_phone(phone)
        data = await send(SYSTEM, self._http, "GET", "/crm/customers", params={"phone": number})
        return customer_from_record(data[0]) if data else None

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
