"""Shared HTTP plumbing for back-office clients: one error vocabulary for every system."""

from __future__ import annotations

from typing import Any

import httpx

from fiflow.domain.redaction import exception_summary, provider_error, safe_code


class BackofficeError(Exception):
    """A back-office call that did not succeed."""

    def __init__(self, system: str, message: str, *, status: int | None = None, code: str = ""):
        super().__init__(f"{system}: {message}")
        self.system = system
        self.status = status
        self.code = code


class BusinessError(BackofficeError):
    """The system refused the request (4xx): retrying the same request cannot succeed."""


class TransientError(BackofficeError):
    """Timeouts, connection failures, 408, 429 and 5xx: worth retrying."""


RETRYABLE_STATUS = {408, 409, 425, 429}


def check(system: str, response: httpx.Response) -> Any:
    """Return the JSON body of a successful response, or raise the matching error.

    The error keeps the provider's code and the HTTP status, never the provider's message:
    providers echo their input there (numbers, names, merchants), and an exception's text
    travels on into Temporal failures, logs and stored reports.
    """
    if response.is_success:
        return response.json() if response.content else None
    code = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            code = safe_code(body.get("code", ""))
    except ValueError:
        pass
    status = response.status_code
    message = provider_error(status, code)
    if status >= 500 or status in RETRYABLE_STATUS:
        raise TransientError(system, message, status=status, code=code)
    raise BusinessError(system, message, status=status, code=code or "rejected")


async def send(system: str, client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> Any:
    """Make one request; transport failures become TransientError."""
    try:
        response = await client.request(method, url, **kw)
    except httpx.TransportError as exc:
        # httpx's texts can quote the URL, whose path or query may hold a customer's data.
        raise TransientError(system, exception_summary(exc)) from None
    return check(system, response)


def make_client(base_url: str, timeout: float, **kw: Any) -> httpx.AsyncClient:
    """An httpx client with a bounded timeout and connection pool for one system."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        **kw,
    )


def idem(key: str) -> dict[str, str]:
    """Headers that make a write idempotent."""
    return {"Idempotency-Key": key}
