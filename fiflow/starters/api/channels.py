"""`/v1/channels/...`: customers' replies, from the SMS provider's webhook and from push."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from fiflow.domain.alerts import SAFE_ID, ReplyOutcome
from fiflow.integrations.twilio_signature import is_valid_signature
from fiflow.starters.alerts_client import (
    alert_view,
    deliver_push_reply,
    deliver_sms,
)
from fiflow.starters.api.auth import require
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.state import ApiState, api_state
from fiflow.starters.workflow_views import Lookup

log = logging.getLogger("fiflow.api")
router = APIRouter(prefix="/v1/channels", tags=["channels"])

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
E164 = r"^\+[1-9][0-9]{6,14}$"


@router.post("/sms/inbound", response_class=Response)
async def sms_inbound(request: Request, state: ApiState = Depends(api_state)) -> Response:
    """The SMS provider's webhook: verify the signature, hand the message to its conversation."""
    settings = state.settings
    form = await request.form()
    params: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise ApiError(400, "bad_request", "file uploads are not accepted")
        params.setdefault(key, []).append(value)
    url = settings.sms_webhook_public_url or str(request.url)
    signature = request.headers.get("X-Twilio-Signature")
    if not is_valid_signature(settings.sms_auth_token, url, params, signature):
        raise ApiError(403, "invalid_signature", "X-Twilio-Signature is missing or wrong")
    account = params.get("AccountSid", [settings.sms_account_sid])[0]
    if account != settings.sms_account_sid:
        raise ApiError(403, "wrong_account", "the message is for another account")
    sender = _one(params, "From")
    message_id = _one(params, "MessageSid")
    body = params.get("Body", [""])[0]
    if not re.match(E164, sender):
        raise ApiError(422, "invalid_request", "From is not an E.164 phone number")
    if not re.match(SAFE_ID, message_id):
        raise ApiError(422, "invalid_request", "MessageSid is not a message identifier")
    await deliver_sms(
        await state.client(),
        settings,
        sender=sender,
        body=body[:1600],
        message_id=message_id,
        received_at=datetime.now(UTC),
    )
    return Response(EMPTY_TWIML, media_type="text/xml")


def _one(params: dict[str, list[str]], name: str) -> str:
    values = params.get(name)
    if not values or not values[0]:
        raise ApiError(422, "invalid_request", f"{name} is required")
    return values[0]


class PushReply(BaseModel):
    """A push action on an alert, from the mobile app."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str = Field(pattern=SAFE_ID)
    action: Literal["confirm", "contest"]
    # The app's own ID for this tap; taps resent with the same ID count once.
    reply_id: str | None = Field(default=None, pattern=SAFE_ID)


class PushReplyAccepted(BaseModel):
    """The reply reached the alert."""

    alert_id: str
    status_url: str


@router.post(
    "/push/replies",
    status_code=202,
    response_model=PushReplyAccepted,
    dependencies=[require("channel")],
)
async def push_reply(reply: PushReply, state: ApiState = Depends(api_state)) -> PushReplyAccepted:
    """Deliver a push action straight to its alert."""
    client = await state.client()
    view = await alert_view(client, reply.alert_id)
    if view.lookup is Lookup.NOT_FOUND:
        raise ApiError(404, "alert_not_found", f"no alert {reply.alert_id}")
    reply_id = reply.reply_id or f"push:{reply.alert_id}:{reply.action}"
    earlier = view.status.reply if view.status else None
    if view.lookup is Lookup.FINISHED or (earlier and earlier.message_id != reply_id):
        raise ApiError(409, "alert_closed", f"alert {reply.alert_id} no longer takes replies")
    await deliver_push_reply(
        client, reply.alert_id, ReplyOutcome(reply.action), reply_id, datetime.now(UTC)
    )
    return PushReplyAccepted(alert_id=reply.alert_id, status_url=f"/v1/alerts/{reply.alert_id}")
