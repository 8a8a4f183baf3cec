"""Contact-center client: callbacks."""

from __future__ import annotations

import httpx

from fiflow.integrations.http import idem, send

SYSTEM = "contact_center"


class ContactCenterClient:
    """Typed client for the contact center's HTTP API."""

    def __init__(self, http: httpx.AsyncClient):
        self._http = http

    async def schedule_callback(
        self, customer_id: str, reason: str, priority: str, reference: str, key: str
    ) -> str:
        """Book a callback; returns its ID."""
        body = {
            "customer_id": customer_id,
            "reason": reason,
            "priority": priority,
            "reference": reference,
        }
        data = await send(
            SYSTEM, self._http, "POST", "/contact-center/callbacks", json=body, headers=idem(key)
        )
        return str(data["callback_id"])
