"""Push-gateway client."""

from __future__ import annotations

import httpx

from fiflow.integrations.http import idem, send

SYSTEM = "push"


class PushClient:
    """Typed client for the push gateway."""

    def __init__(self, http: httpx.AsyncClient):
        self._http = http

    async def send(
        self,
        device_id: str,
        title: str,
        body: str,
        actions: list[str],
        data: dict[str, str],
        key: str,
    ) -> str:
        """Send a push notification; returns the gateway's push ID."""
        payload = {"device_id": device_id, "title": title, "body": body, "actions": actions}
        payload["data"] = data  # type: ignore[assignment]
        result = await send(
            SYSTEM, self._http, "POST", "/push/messages", json=payload, headers=idem(key)
        )
        return str(result["push_id"])
