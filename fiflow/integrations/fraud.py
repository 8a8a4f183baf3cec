"""Fraud-system client: case outcomes."""

from __future__ import annotations

import httpx

from fiflow.integrations.http import idem, send

SYSTEM = "fraud"


class FraudClient:
    """Typed client for the fraud system's HTTP API."""

    def __init__(self, http: httpx.AsyncClient):
        self._http = http

    async def record_outcome(
        self, case_ref: str, customer_id: str, outcome: str, alert_type: str, key: str
    ) -> str:
        """Record how a case ended; returns the fraud system's case ID."""
        body = {
            "case_ref": case_ref,
            "customer_id": customer_id,
            "outcome": outcome,
            "alert_type": alert_type,
        }
        data = await send(SYSTEM, self._http, "POST", "/fraud/cases", json=body, headers=idem(key))
        return str(data["case_id"])
