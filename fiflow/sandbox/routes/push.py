"""Push provider: notifications to a customer's device."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from fiflow.sandbox.errors import SandboxError
from fiflow.sandbox.ids import new_id
from fiflow.sandbox.models import PushRequest
from fiflow.sandbox.pipeline import handle_call
from fiflow.sandbox.state import SandboxState, get_state
from fiflow.sandbox.timeutil import iso_now

router = APIRouter(prefix="/push", tags=["push"])


@router.post("/messages", status_code=201)
async def send_push(
    message: PushRequest, request: Request, state: SandboxState = Depends(get_state)
) -> Response:
    """Send a push notification; it lands in the push outbox."""

    def action() -> tuple[int, Any]:
        if not state.directory.has_device(message.device_id):
            raise SandboxError(
                404, "device_not_found", f"No customer has device {message.device_id!r}."
            )
        push_id = new_id("push")
        state.push_outbox.add(
            {
                "push_id": push_id,
                "device_id": message.device_id,
                "title": message.title,
                "body": message.body,
                "actions": message.actions,
                "data": message.data,
                "sent_at": iso_now(),
            }
        )
        return 201, {"push_id": push_id, "status": "sent"}

    return await handle_call(state, request, "push", action, body=await request.json())
