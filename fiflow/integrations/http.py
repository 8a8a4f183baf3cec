"""Shared HTTP plumbing for back-office clients: one error vocabulary for every system."""

from __future__ import annotations

from typing import Any

import httpx


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
    """Return the JSON body of a successful response, or raise the matching error."""
    if response.is_success:
        return response.json() if response.content else None
    code, message = "", response.reason_phrase
    try:
        body = response.json()
        if isinstance(body, dict):
            code = str(body.get("code", ""))
            message = str(body.get("message", message))
    except ValueError:
        pass
    status = response.status_code
    if status >= 500 or status in RETRYABLE_STATUS:
        raise TransientError(system, f"HTTP {status} {message}", status=status, code=code)
    raise BusinessError(system, f"HTTP {status} {message}", status=status, code=code or "rejected")


async def send(system: str, client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> Any:
    """Make one request; transport failures become TransientError."""
    try:
        response = await client.request(method, url, **kw)
    except httpx.TransportError as exc:
        raise TransientError(system, f"{type(exc).__name__}: {exc}") from exc
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
