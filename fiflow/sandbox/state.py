"""Everything the running sandbox holds, in one object reachable from each request."""

from __future__ import annotations

import httpx
from fastapi import Request

from fiflow.sandbox.config import SandboxConfig
from fiflow.sandbox.directory import Directory
from fiflow.sandbox.outbox import Outbox
from fiflow.sandbox.store import CallLog, FaultBook, IdempotencyStore


class SandboxState:
    """Customers, recorded calls, idempotent responses, faults, outboxes, webhook client."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.directory = Directory(config.seed, config.customer_count)
        self.calls = CallLog()
        self.idempotency = IdempotencyStore()
        self.faults = FaultBook(config.seed)
        self.sms_outbox = Outbox("to")
        self.push_outbox = Outbox("device_id")
        # Shared so webhook deliveries reuse connections; the app lifespan closes it.
        self.http: httpx.AsyncClient | None = None

    def http_client(self) -> httpx.AsyncClient:
        """The shared webhook client, created on first use (also when no lifespan ran)."""
        if self.http is None:
            self.http = httpx.AsyncClient(timeout=self.config.webhook_timeout_seconds)
        return self.http

    def reset(self) -> None:
        """Back to the seeded state: no calls, messages, stored responses or faults."""
        self.directory.reset()
        self.calls.clear()
        self.idempotency.clear()
        self.faults.clear()
        self.sms_outbox.clear()
        self.push_outbox.clear()


def get_state(request: Request) -> SandboxState:
    """FastAPI dependency: the sandbox state of the app serving this request."""
    state: SandboxState = request.app.state.sandbox
    return state
