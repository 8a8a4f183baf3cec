"""The FastAPI application: routers, error shape, body limit, health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.service import RPCError

from fiflow.integrations.settings import Settings
from fiflow.starters.api import (
    admin,
    alerts,
    channels,
    credit,
    credit_prefills,
    errors,
    feed_batches,
    feeds,
    follow_ups,
    interactions,
    lists,
    metrics,
    notices,
    openapi,
    preferences,
    reports,
    results_reports,
    rule_documents,
)
from fiflow.starters.api.inbox_relay import start_relay
from fiflow.starters.api.limits import BodyLimitMiddleware, BodyTooLarge
from fiflow.starters.api.rate_limits import (
    RateLimited,
    RateLimiter,
    limits_from_settings,
    rate_limited_response,
)
from fiflow.starters.api.state import ApiState, api_state
from fiflow.starters.console import results_pages as console_results
from fiflow.starters.console.routes import install as install_console


def create_app(settings: Settings, client: Client | None = None) -> FastAPI:
    """The API for one process; `client` is for tests that already hold one."""
    state = ApiState(settings, client)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await state.open()
        # Delivers what the durable inbox holds once Temporal is back (see api/inbox_relay.py).
        relay = start_relay(state) if settings.inbox_relay else None
        try:
            yield
        finally:
            if relay is not None:
                relay.cancel()
                with suppress(asyncio.CancelledError):
                    await relay
            await state.close()

    app = FastAPI(
        title="fiflow",
        version="0.1.0",
        summary="Orchestration of a financial institution's customer processes",
        description="Every error answers `{code, message, details?}` (the ErrorBody schema) "
        "with a 4xx or 5xx status; each operation lists the statuses it can answer.",
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_id,
    )
    openapi.install(app)
    app.state.fiflow = state
    app.state.api_keys = state.api_keys
    app.state.rate_limiter = RateLimiter(limits_from_settings(settings))
    errors.install(app)
    app.add_exception_handler(RateLimited, rate_limited_response)

    async def too_large(_: object, __: Exception) -> JSONResponse:
        return errors.error_response(
            413,
            "body_too_large",
            f"request bodies are limited to {settings.api_max_body_bytes} bytes",
        )

    app.add_exception_handler(BodyTooLarge, too_large)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.api_max_body_bytes,
        larger={
            feed_batches.UPLOAD_PATH: settings.batch_max_bytes,
            feeds.TRANSACTIONS_PATH: settings.feed_ingest_max_bytes,
        },
    )
    app.include_router(lists.router)
    app.include_router(alerts.router)
    app.include_router(notices.router)
    app.include_router(channels.router)
    app.include_router(credit.router)
    app.include_router(credit_prefills.router)
    app.include_router(reports.router)
    app.include_router(results_reports.router)
    app.include_router(interactions.router)
    app.include_router(follow_ups.router)
    app.include_router(admin.router)
    app.include_router(rule_documents.router)
    app.include_router(feed_batches.router)
    app.include_router(feeds.router)
    app.include_router(preferences.router)
    install_console(app)
    app.include_router(console_results.router)
    app.include_router(metrics.router)

    @app.get(
        "/healthz",
        tags=["ops"],
        operation_id="ops_healthz",
        summary="Liveness",
        responses=openapi.errors(500),
    )
    async def healthz(st: ApiState = Depends(api_state)) -> dict[str, object]:
        """Liveness, and whether Temporal answers (connects on first call)."""
        temporal = "unavailable"
        try:
            client = await st.client()
            await client.workflow_service.get_system_info(GetSystemInfoRequest())
            temporal = "ok"
        except (errors.ApiError, RPCError):
            pass
        return {"status": "ok", "temporal": temporal}

    return app
