"""What the API process holds: settings, a lazily connected Temporal client, the CRM client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx
import nats.errors
from fastapi import Request
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from sqlalchemy.engine import Engine
from temporalio.client import Client

from fiflow.integrations.crm import CrmClient
from fiflow.integrations.database import create_db_engine
from fiflow.integrations.http import make_client
from fiflow.integrations.inbox import Inbox
from fiflow.integrations.interactions_store import InteractionStore
from fiflow.integrations.message_ledger import MessageLedger
from fiflow.integrations.nats_stream import StreamUnavailable, connect_nats, ensure_streams
from fiflow.integrations.oidc import OidcVerifier
from fiflow.integrations.reports import CreditReportStore
from fiflow.integrations.results_reports import ResultsReportStore
from fiflow.integrations.rule_versions import RuleVersionStore
from fiflow.integrations.rules_store import RuleStore
from fiflow.integrations.settings import Settings
from fiflow.integrations.temporal import connect, payload_codec
from fiflow.starters.api.errors import ApiError

log = logging.getLogger("fiflow.api")
NATS_RETRY_AFTER_S = 2.0


class ApiState:
    """Shared by every request of one API process."""

    def __init__(self, settings: Settings, client: Client | None = None):
        self.settings = settings
        self.api_keys = settings.api_key_roles
        self.staff_keys = settings.staff_key_people
        if set(self.api_keys) & set(self.staff_keys):
            # Which one would it be: a person, or a shared key no one answers for?
            raise ValueError("a key is in both FIFLOW_API_KEYS and FIFLOW_STAFF_KEYS")
        self.oidc = (
            OidcVerifier(
                settings.api_oidc_issuer, settings.api_oidc_audience, settings.api_oidc_jwks_url
            )
            if settings.api_oidc_issuer
            else None
        )
        # The engine connects on first use only: most API calls never touch the database.
        self.engine: Engine = create_db_engine(settings.database_url)
        self.rule_versions = RuleVersionStore(self.engine)
        self.rules = RuleStore(settings.rules_dir, self.rule_versions)
        self.interactions = InteractionStore(self.engine)
        self.message_ledger = MessageLedger(self.engine)
        self._inbox: Inbox | None = None
        self._reports: CreditReportStore | None = None
        self._results_reports: ResultsReportStore | None = None
        self._client = client
        self._lock = asyncio.Lock()
        self._crm_http: httpx.AsyncClient | None = None
        self.crm: CrmClient | None = None
        self._nats: NatsClient | None = None
        self._nats_lock = asyncio.Lock()
        self._nats_failed_at = float("-inf")

    async def open(self) -> None:
        """Create the HTTP clients (inside the server's event loop)."""
        self._crm_http = make_client(self.settings.system_url("crm"), timeout=3.0)
        self.crm = CrmClient(self._crm_http)

    async def close(self) -> None:
        """Release connections."""
        if self._crm_http is not None:
            await self._crm_http.aclose()
        if self._nats is not None:
            with contextlib.suppress(Exception):
                await self._nats.close()
        self.engine.dispose()

    def inbox(self) -> Inbox:
        """The durable inbox; built on first use, as it needs the payload key ring."""
        if self._inbox is None:
            self._inbox = Inbox(self.engine, payload_codec(self.settings))
        return self._inbox

    def reports(self) -> CreditReportStore:
        """The credit report store; built on first use, as it needs the payload key ring."""
        if self._reports is None:
            self._reports = CreditReportStore(self.engine, sealer=payload_codec(self.settings))
        return self._reports

    def results_reports(self) -> ResultsReportStore:
        """The alerts' and follow-ups' results report store; built on first use (key ring)."""
        if self._results_reports is None:
            self._results_reports = ResultsReportStore(
                self.engine, sealer=payload_codec(self.settings)
            )
        return self._results_reports

    async def client(self) -> Client:
        """The Temporal client, connected on first use (the API starts before Temporal may)."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await connect(self.settings)
                except RuntimeError as exc:
                    log.warning("cannot connect to temporal: %s", exc)
                    raise ApiError(
                        503, "temporal_unavailable", "the workflow service is unavailable"
                    ) from exc
        return self._client

    async def feed_stream(self) -> JetStreamContext:
        """The transaction stream, connected on first use (503 while NATS is unavailable)."""
        unavailable = ApiError(503, "stream_unavailable", "the transaction stream is unavailable")
        async with self._nats_lock:
            if self._nats is None or self._nats.is_closed:
                # Right after a failed connect, answer at once rather than queue behind retries.
                if time.monotonic() - self._nats_failed_at < NATS_RETRY_AFTER_S:
                    raise unavailable
                nc = None
                try:
                    nc = await connect_nats(self.settings, "fiflow-api", within_s=3.0)
                    await ensure_streams(nc.jetstream(), self.settings)
                except (StreamUnavailable, nats.errors.Error) as exc:
                    if nc is not None:
                        with contextlib.suppress(Exception):
                            await nc.close()
                    log.warning("cannot reach the transaction stream: %s", type(exc).__name__)
                    self._nats_failed_at = time.monotonic()
                    raise unavailable from None
                self._nats = nc
        return self._nats.jetstream()

    @property
    def connected(self) -> bool:
        """Whether a Temporal client exists."""
        return self._client is not None


def api_state(request: Request) -> ApiState:
    """The process state, for endpoints."""
    state: ApiState = request.app.state.fiflow
    return state
