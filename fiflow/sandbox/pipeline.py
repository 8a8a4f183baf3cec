"""What every back-office call goes through: latency, faults, idempotent replay, recording."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from fiflow.sandbox.errors import SandboxError, TwilioError, twilio_generic
from fiflow.sandbox.state import SandboxState

# An action runs synchronously: with no await between the idempotency lookup and the
# store, two concurrent calls with one key cannot both apply their effect.
Action = Callable[[], tuple[int, Any]]
Guard = Callable[[], None]

PATH_PREFIXES = (
    ("/crm/", "crm"),
    ("/fraud/", "fraud"),
    ("/cards/", "card"),
    ("/contact-center/", "contact_center"),
    ("/push/", "push"),
    ("/2010-04-01/", "sms"),
    ("/bureau/", "bureau"),
    ("/core-banking/", "core_banking"),
    ("/billing/", "billing"),
)
# Twilio's own idempotency header, so an unmodified Twilio client can use it too.
KEY_HEADERS = ("idempotency-key", "i-twilio-idempotency-token")


def system_for_path(path: str) -> str | None:
    """The simulated system a request path belongs to, if any."""
    for prefix, system in PATH_PREFIXES:
        if path.startswith(prefix):
            return system
    return None


def idempotency_key(request: Request) -> str | None:
    """The caller's idempotency key, if it sent a non-empty one."""
    for header in KEY_HEADERS:
        value = request.headers.get(header)
        if value:
            return value
    return None


def injected_error(
    system: str, status_code: int, *, echo: bool = False, request: Any = None
) -> SandboxError:
    """The error answered for an injected fault, in that system's error shape.

    With `echo`, the message quotes the request the way real providers do.
    """
    if echo:
        return _echoing_error(system, status_code, request)
    message = f"Injected fault on {system} (status {status_code})."
    if system == "sms":
        return twilio_generic(status_code, message)
    return SandboxError(status_code, "injected_fault", message)


def _echoing_error(system: str, status_code: int, request: Any) -> SandboxError:
    fields = request if isinstance(request, dict) else {}
    if system == "sms":
        # Twilio's 21211 (invalid To) and 21617 (body too long) quote the input verbatim.
        to, body = fields.get("To", ""), fields.get("Body", "")
        message = f"The 'To' number {to} is not a valid phone number. Body: {body}"
        return TwilioError(status_code, 21211 if status_code < 500 else 20500, message)
    return SandboxError(
        status_code,
        "request_rejected",
        f"Could not process request {json.dumps(request, default=str)}",
    )


async def handle_call(
    state: SandboxState,
    request: Request,
    system: str,
    action: Action,
    *,
    body: Any = None,
    write: bool = True,
    guard: Guard | None = None,
) -> Response:
    """Answer one system call: delay, check, fault or replay or act, then record it."""
    latency = state.faults.latency_seconds(system)
    if latency:
        await asyncio.sleep(latency)
    key = idempotency_key(request) if write else None
    # What an echoing fault quotes: the body, else the path and query (a GET's input).
    echoed = body if body is not None else f"{request.url.path}?{request.url.query}"

    def record(
        status_code: int, *, replayed: bool = False, fault: bool = False, applied: bool = False
    ) -> None:
        state.calls.record(
            system=system,
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            idempotency_key=key,
            body=body,
            status_code=status_code,
            replayed=replayed,
            fault=fault,
            applied=applied,
        )

    try:
        if guard is not None:
            guard()
        fault = state.faults.trip(system)
        lost: SandboxError | None = None  # an after-write fault's answer
        if fault is not None:
            error = injected_error(system, fault.status_code, echo=fault.echo, request=echoed)
            if not fault.after_write:
                record(error.status_code, fault=True)
                return error.response()
            lost = error
        if key is not None and (stored := state.idempotency.get(system, key)) is not None:
            status_code, payload = stored
            if lost is not None:  # replayed, and that answer is lost too
                record(lost.status_code, replayed=True, fault=True)
                return lost.response()
            record(status_code, replayed=True)
            return JSONResponse(payload, status_code, headers={"Idempotent-Replayed": "true"})
        status_code, payload = action()
    except SandboxError as error:
        record(error.status_code)
        return error.response()
    # Actions raise for what they refuse, so a 2xx write is one that took effect.
    applied = write and 200 <= status_code < 300
    if key is not None and 200 <= status_code < 300:
        state.idempotency.put(system, key, status_code, payload)
    if lost is not None:  # the effect stays, the answer is lost
        record(lost.status_code, fault=True, applied=applied)
        return lost.response()
    record(status_code, applied=applied)
    return JSONResponse(payload, status_code)
