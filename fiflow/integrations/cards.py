"""Card-system client: block and unblock cards."""

from __future__ import annotations

import httpx

from fiflow.integrations.http import idem, send

SYSTEM = "card"


class CardClient:
    """Typed client for the card system's HTTP API."""

    def __init__(self, http: httpx.AsyncClient):
        self._http = http

    async def set_blocked(
        self, customer_id: str, card_last4: str, blocked: bool, reason: str, key: str
    ) -> str:
        """Block or unblock a card; returns its new status."""
        path = "/cards/block" if blocked else "/cards/unblock"
        body = {"customer_id": customer_id, "card_last4": card_last4, "reason": reason}
        data = await send(SYSTEM, self._http, "POST", path, json=body, headers=idem(key))
        return str(data["status"])
