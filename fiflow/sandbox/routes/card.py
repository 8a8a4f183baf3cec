"""Card system: block and unblock a customer's card."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from fiflow.sandbox.errors import card_not_found
from fiflow.sandbox.models import CardActionRequest
from fiflow.sandbox.pipeline import handle_call
from fiflow.sandbox.seed import CardStatus
from fiflow.sandbox.state import SandboxState, get_state

router = APIRouter(prefix="/cards", tags=["card"])


async def _set_status(
    command: CardActionRequest, request: Request, state: SandboxState, status: CardStatus
) -> Response:
    def action() -> tuple[int, Any]:
        card = state.directory.card(command.customer_id, command.card_last4)
        if card is None:
            raise card_not_found(command.customer_id, command.card_last4)
        # Setting the status it already has succeeds: the card system is level-triggered.
        card.status = status
        return 200, {"card_id": card.card_id, "last4": card.last4, "status": card.status}

    return await handle_call(state, request, "card", action, body=await request.json())


@router.post("/block")
async def block_card(
    command: CardActionRequest, request: Request, state: SandboxState = Depends(get_state)
) -> Response:
    """Block a card."""
    return await _set_status(command, request, state, "blocked")


@router.post("/unblock")
async def unblock_card(
    command: CardActionRequest, request: Request, state: SandboxState = Depends(get_state)
) -> Response:
    """Unblock a card."""
    return await _set_status(command, request, state, "active")
