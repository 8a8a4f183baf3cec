"""Error bodies: `{code, message}` for our systems, Twilio's own shape for the SMS API."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class SandboxError(Exception):
    """A business or request error answered as `{"code": str, "message": str}`."""

    def __init__(
        self, status_code: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = headers

    def payload(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        return {"code": self.code, "message": self.message}

    def response(self) -> JSONResponse:
        """The error as an HTTP response."""
        return JSONResponse(self.payload(), status_code=self.status_code, headers=self.headers)


class TwilioError(SandboxError):
    """An error in Twilio's REST shape, so Twilio client libraries parse it."""

    def __init__(
        self,
        status_code: int,
        twilio_code: int,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, str(twilio_code), message, headers)
        self.twilio_code = twilio_code

    def payload(self) -> dict[str, Any]:
        """Twilio's error body: numeric code, message, docs link and HTTP status."""
        return {
            "code": self.twilio_code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.twilio_code}",
            "status": self.status_code,
        }


def twilio_generic(status_code: int, message: str) -> TwilioError:
    """A Twilio error for a bare HTTP status (Twilio numbers these 20000 + status)."""
    return TwilioError(status_code, 20000 + status_code, message)


def customer_not_found(customer_id: str) -> SandboxError:
    """The 404 every system answers for an unknown customer."""
    return SandboxError(404, "customer_not_found", f"No customer with id {customer_id!r}.")


def card_not_found(customer_id: str, last4: str) -> SandboxError:
    """The 404 for a card the customer does not have."""
    return SandboxError(
        404, "card_not_found", f"Customer {customer_id!r} has no card ending {last4}."
    )


def ticket_not_found(ticket_id: str) -> SandboxError:
    """The 404 the CRM answers for an unknown support ticket."""
    return SandboxError(404, "ticket_not_found", f"No ticket with id {ticket_id!r}.")
