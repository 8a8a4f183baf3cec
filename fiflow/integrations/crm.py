"""CRM client: customer profiles and interaction notes."""

from __future__ import annotations

import httpx

from fiflow.domain.customers import Customer
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
