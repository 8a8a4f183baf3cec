"""Read-only views of the sandbox for tests and people (never recorded as calls)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from fiflow.sandbox.phones import from_query
from fiflow.sandbox.state import SandboxState, get_state
from fiflow.sandbox.store import System
from fiflow.sandbox.waiting import MAX_WAIT_SECONDS, read_past

router = APIRouter(prefix="/__sandbox", tags=["sandbox"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@router.get("/customers")
async def customers(state: SandboxState = Depends(get_state)) -> list[dict[str, Any]]:
    """Every seeded customer with current card statuses."""
    return [c.model_dump(mode="json") for c in state.directory.customers]


# Long-polling: `after=N` skips the first N matching items; `wait=S` holds the request up to
# S seconds (30 at most) until there is something past them. Without either: the whole list.
AFTER = Query(default=0, ge=0, description="skip the first N matching items")
WAIT = Query(
    default=0.0, ge=0, le=MAX_WAIT_SECONDS, description="seconds to wait for more than `after`"
)


@router.get("/sms/outbox")
async def sms_outbox(
    to: str | None = Query(default=None, description="E.164 recipient"),
    after: int = AFTER,
    wait: float = WAIT,
    state: SandboxState = Depends(get_state),
) -> list[dict[str, Any]]:
    """Sent SMS in send order, optionally to one recipient."""
    box, recipient = state.sms_outbox, from_query(to) if to else None
    return await read_past(
        lambda: box.find(recipient), box.wakeups, box.wake_key(recipient), after, wait
    )


@router.get("/push/outbox")
async def push_outbox(
    device_id: str | None = None,
    after: int = AFTER,
    wait: float = WAIT,
    state: SandboxState = Depends(get_state),
) -> list[dict[str, Any]]:
    """Sent push notifications in send order, optionally to one device."""
    box = state.push_outbox
    return await read_past(
        lambda: box.find(device_id), box.wakeups, box.wake_key(device_id), after, wait
    )


@router.get("/calls")
async def calls(
    system: System | None = None,
    idempotency_key: str | None = None,
    after: int = AFTER,
    wait: float = WAIT,
    state: SandboxState = Depends(get_state),
) -> list[dict[str, Any]]:
    """Recorded calls in arrival order, optionally for one system and/or idempotency key.

    Each call has `status_code` (what was answered), `fault` (an injected fault answered
    it), `replayed` (answered from the stored response of its Idempotency-Key) and
    `applied` (this call carried out a write, even when an `after_write` fault lost the
    answer; false for refused or failed writes, replays and reads). The calls with
    `applied: true` are exactly the effects the systems took.
    """
    log = state.calls
    return await read_past(
        lambda: log.find(system, idempotency_key),
        log.wakeups,
        log.wake_key(system, idempotency_key),
        after,
        wait,
    )
