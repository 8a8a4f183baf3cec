"""Read-only views of the sandbox for tests and people (never recorded as calls)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from fiflow.sandbox.phones import from_query
from fiflow.sandbox.state import SandboxState, get_state
from fiflow.sandbox.store import System

router = APIRouter(prefix="/__sandbox", tags=["sandbox"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@router.get("/customers")
async def customers(state: SandboxState = Depends(get_state)) -> list[dict[str, Any]]:
    """Every seeded customer with current card statuses."""
    return [c.model_dump(mode="json") for c in state.directory.customers]


@router.get("/sms/outbox")
async def sms_outbox(
    to: str | None = Query(default=None, description="E.164 recipient"),
    state: SandboxState = Depends(get_state),
) -> list[dict[str, Any]]:
    """Sent SMS in send order, optionally to one recipient."""
    return state.sms_outbox.find(from_query(to) if to else None)


@router.get("/push/outbox")
async def push_outbox(
    device_id: str | None = None, state: SandboxState = Depends(get_state)
) -> list[dict[str, Any]]:
    """Sent push notifications in send order, optionally to one device."""
    return state.push_outbox.find(device_id)


@router.get("/calls")
async def calls(
    system: System | None = None,
    idempotency_key: str | None = None,
    state: SandboxState = Depends(get_state),
) -> list[dict[str, Any]]:
    """Recorded calls in arrival order, optionally for one system and/or idempotency key."""
    return state.calls.find(system, idempotency_key)
