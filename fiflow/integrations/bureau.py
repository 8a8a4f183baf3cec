"""Credit-bureau client: soft and hard pulls."""

from __future__ import annotations

from typing import Literal

import httpx
from pydantic import ValidationError

from fiflow.domain.credit import BureauReport
from fiflow.integrations.http import BusinessError, idem, send

SYSTEM = "bureau"


class BureauClient:
    """Typed client for the credit bureau's HTTP API."""

    def __init__(self, http: httpx.AsyncClient):
        self._http = http

    async def pull(
        self,
        customer_id: str,
        kind: Literal["soft", "hard"],
        purpose: str,
        reference: str,
        key: str,
    ) -> BureauReport:
        """Pull the customer's credit file; the key makes a retried hard pull the same pull."""
        body = {
            "customer_id": customer_id,
            "kind": kind,
            "purpose": purpose,
            "reference": reference,
        }
        data = await send(SYSTEM, self._http, "POST", "/bureau/pulls", json=body, headers=idem(key))
        try:
            return BureauReport.model_validate(data)
        except ValidationError as exc:
            # A file without a usable score ("no score" codes) is an answer, not an outage.
            fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            raise BusinessError(
                SYSTEM, f"unusable bureau answer ({fields})", code="unusable_answer"
            ) from None
