"""SMS provider client, speaking Twilio's Messages API."""

from __future__ import annotations

import httpx

from fiflow.domain.redaction import exception_summary
from fiflow.integrations.http import BusinessError, TransientError, check, idem

SYSTEM = "sms"
# Twilio errors that will not go away on retry still come back as 4xx; 429 is throttling.


class SmsClient:
    """Sends SMS through a Twilio-compatible `Messages.json` endpoint."""

    def __init__(self, http: httpx.AsyncClient, account_sid: str, auth_token: str, sender: str):
        self._http = http
        self._sid = account_sid
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._from = sender

    async def send(self, to: str, body: str, key: str) -> str:
        """Send one message; returns the provider's message SID."""
        try:
            response = await self._http.post(
                f"/2010-04-01/Accounts/{self._sid}/Messages.json",
                data={"To": to, "From": self._from, "Body": body},
                auth=self._auth,
                headers=idem(key),
            )
        except httpx.TransportError as exc:
            # httpx's texts can quote the URL; the summary keeps the type and a scrubbed text.
            raise TransientError(SYSTEM, exception_summary(exc)) from None
        data = check(SYSTEM, response)
        if not isinstance(data, dict) or "sid" not in data:
            raise BusinessError(SYSTEM, "response has no message sid", code="bad_response")
        return str(data["sid"])
