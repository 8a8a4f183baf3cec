"""The sandbox ASGI app: routes, error shapes and the webhook client's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fiflow.sandbox.config import SandboxConfig
from fiflow.sandbox.errors import SandboxError, twilio_generic
from fiflow.sandbox.pipeline import idempotency_key, system_for_path
from fiflow.sandbox.routes import (
    billing,
    bureau,
    card,
    contact_center,
    control,
    core_banking,
    credit_inspection,
    crm,
    crm_inspection,
    crm_tickets,
    feeds,
    fraud,
    inbound,
    inspection,
    push,
    sms,
)
from fiflow.sandbox.state import SandboxState

HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "Invalid request: " + "; ".join(parts)


def _install_error_handlers(app: FastAPI, state: SandboxState) -> None:
    @app.exception_handler(SandboxError)
    async def sandbox_error(request: Request, exc: SandboxError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = SandboxError(422, "invalid_request", _validation_message(exc))
        system = system_for_path(request.url.path)
        # A refused call to a system is still a call the system received.
        if system is not None:
            state.calls.record(
                system=system,
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                idempotency_key=idempotency_key(request) if request.method != "GET" else None,
                body=exc.body if isinstance(exc.body, dict | list) else None,
                status_code=422,
            )
        return error.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if system_for_path(request.url.path) == "sms":
            return twilio_generic(exc.status_code, str(exc.detail)).response()
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return SandboxError(exc.status_code, code, str(exc.detail)).response()

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A sandbox bug must still answer in the documented shape, not as plain text.
        return SandboxError(500, "internal_error", f"{type(exc).__name__}: {exc}").response()


def create_app(config: SandboxConfig | None = None) -> FastAPI:
    """Build a sandbox app with fresh seeded state."""
    config = config or SandboxConfig()
    state = SandboxState(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.http_client()
        try:
            yield
        finally:
            if state.http is not None:
                await state.http.aclose()
                state.http = None

    app = FastAPI(
        title="fiflow sandbox",
        description="A simulated FI back office that records every call it receives.",
        version="1",
        lifespan=lifespan,
    )
    app.state.sandbox = state
    _install_error_handlers(app, state)
    systems = (
        crm,
        crm_tickets,
        fraud,
        card,
        contact_center,
        push,
        sms,
        bureau,
        core_banking,
        billing,
    )
    views = (inspection, credit_inspection, crm_inspection, inbound, control, feeds)
    for module in (*systems, *views):
        app.include_router(module.router)
    return app
