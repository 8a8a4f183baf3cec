"""Fault injection and reset."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from fiflow.sandbox.state import SandboxState, get_state
from fiflow.sandbox.store import Fault, System

router = APIRouter(prefix="/__sandbox", tags=["sandbox"])


@router.post("/faults")
async def set_fault(fault: Fault, state: SandboxState = Depends(get_state)) -> Fault:
    """Inject latency and/or errors into one system, replacing its previous fault."""
    return state.faults.set(fault)


@router.get("/faults")
async def list_faults(state: SandboxState = Depends(get_state)) -> list[Fault]:
    """Active faults (a fault with `remaining` disappears once used up)."""
    return state.faults.all()


@router.delete("/faults")
async def clear_faults(
    system: System | None = None, state: SandboxState = Depends(get_state)
) -> list[Fault]:
    """Clear one system's fault, or all; returns the faults still active."""
    state.faults.clear(system)
    return state.faults.all()


@router.post("/reset")
async def reset(state: SandboxState = Depends(get_state)) -> dict[str, str]:
    """Back to the seeded state: no calls, messages, notes, tickets, stored responses, faults."""
    state.reset()
    return {"status": "reset"}
