"""Everything the running sandbox holds, in one object reachable from each request."""

from __future__ import annotations

from datetime import date

import httpx
from fastapi import Request

from fiflow.sandbox.billing_accounts import BillingBook
from fiflow.sandbox.bureau import Bureau
from fiflow.sandbox.config import SandboxConfig
from fiflow.sandbox.core_accounts import CoreAccounts
from fiflow.sandbox.credit_profiles import CreditProfile, build_profiles
from fiflow.sandbox.crm_notes import NoteBook
from fiflow.sandbox.crm_tickets import TicketBook
from fiflow.sandbox.directory import Directory
from fiflow.sandbox.months import utc_today
from fiflow.sandbox.outbox import Outbox
from fiflow.sandbox.statements import StatementBook
from fiflow.sandbox.store import CallLog, FaultBook, IdempotencyStore


class SandboxState:
    """Customers, recorded calls, idempotent responses, faults, outboxes, webhook client."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.directory = Directory(config.seed, config.customer_count)
        # Profiles and statements derive from the seed alone and never change.
        self.profiles: dict[str, CreditProfile] = {
            p.customer_id: p for p in build_profiles(config.seed, config.customer_count)
        }
        self.statements = StatementBook(config.seed)
        self.notes = NoteBook()
        self.tickets = TicketBook()
        self.bureau = Bureau()
        self.core_accounts = CoreAccounts()
        self.billing = BillingBook()
        self.calls = CallLog()
        self.idempotency = IdempotencyStore()
        self.faults = FaultBook(config.seed)
        self.sms_outbox = Outbox("to")
        self.push_outbox = Outbox("device_id")
        # Shared so webhook deliveries reuse connections; the app lifespan closes it.
        self.http: httpx.AsyncClient | None = None

    def today(self) -> date:
        """The sandbox's calendar date: SANDBOX_TODAY if pinned, else today in UTC."""
        return self.config.today or utc_today()

    def http_client(self) -> httpx.AsyncClient:
        """The shared webhook client, created on first use (also when no lifespan ran)."""
        if self.http is None:
            self.http = httpx.AsyncClient(timeout=self.config.webhook_timeout_seconds)
        return self.http

    def reset(self) -> None:
        """Back to the seeded state: no calls, messages, notes, tickets, pulls, accounts, faults."""
        self.directory.reset()
        self.notes.clear()
        self.tickets.clear()
        self.bureau.reset()
        self.core_accounts.clear()
        self.billing.clear()
        self.calls.clear()
        self.idempotency.clear()
        self.faults.clear()
        self.sms_outbox.clear()
        self.push_outbox.clear()


def get_state(request: Request) -> SandboxState:
    """FastAPI dependency: the sandbox state of the app serving this request."""
    state: SandboxState = request.app.state.sandbox
    return state
