"""`/v1/channels/...`: customers' replies, from the SMS provider's webhook and from push."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError

from fiflow.domain.alerts import SAFE_ID, ReplyOutcome
from fiflow.domain.phones import InvalidPhoneNumber, normalise_phone
from fiflow.domain.push_binding import push_token_is_valid
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
# A ledger call slower than this is given up on: the provider times the webhook out at 15 s.
LEDGER_TIMEOUT_S = 2.0

T = TypeVar("T")


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
    if not is_valid_signature(settings.sms_auth_token.get_secret_value(), url, params, signature):
        raise ApiError(403, "invalid_signature", "X-Twilio-Signature is missing or wrong")
    account = params.get("AccountSid", [settings.sms_account_sid])[0]
    if account != settings.sms_account_sid:
        raise ApiError(403, "wrong_account", "the message is for another account")
    sender = _one(params, "From")
    message_id = _one(params, "MessageSid")
    body = params.get("Body", [""])[0]
    try:
        # The conversation and the opt-out are keyed by the E.164 form, whatever came in.
        sender = normalise_phone(sender)
    except InvalidPhoneNumber as exc:
        raise ApiError(422, "invalid_phone_number", f"From: {exc}") from None
    if not re.match(SAFE_ID, message_id):
        raise ApiError(422, "invalid_request", "MessageSid is not a message identifier")
    ledger = state.message_ledger
    # The conversation only remembers its own last few hundred IDs; the ledger drops a replay
    # weeks later. If the database is down the message is delivered anyway: the
    # conversation's own dedup still applies, and losing a customer's reply is worse.
    if await _ledger_call("check", ledger.seen, message_id):
        log.info("replayed MessageSid dropped: %s", message_id)
        return Response(EMPTY_TWIML, media_type="text/xml")
    received_at = datetime.now(UTC)
    await deliver_sms(
        await state.client(),
        settings,
        sender=sender,
        body=body[:1600],
        message_id=message_id,
        received_at=received_at,
    )
    # Recorded only once delivered: a failed delivery answers 5xx and the provider's retry
    # must get through. A duplicate racing in between is caught by the conversation's dedup.
    await _ledger_call("record", ledger.record, message_id, received_at)
    return Response(EMPTY_TWIML, media_type="text/xml")


async def _ledger_call(what: str, call: Callable[..., T], *args: object) -> T | None:
    """Run a blocking ledger call off the event loop; None (and a warning) if it failed."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(call, *args), LEDGER_TIMEOUT_S)
    except (SQLAlchemyError, TimeoutError) as exc:
        log.warning("sms message ledger %s failed: %s", what, type(exc).__name__)
        return None


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
    # The device the app runs on and the `reply_token` its push carried: together they prove
    # the reply comes from the device fiflow pushed this alert to.
    device_id: str = Field(min_length=1, max_length=128)
    token: str = Field(min_length=1, max_length=128)
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
    """Deliver a push action straight to its alert, from the device it was pushed to."""
    secret = state.settings.push_token_key.get_secret_value()
    if not push_token_is_valid(secret, reply.alert_id, reply.device_id, reply.token):
        raise ApiError(
            403,
            "invalid_push_token",
            "the token is not the one pushed to this device for this alert",
        )
    client = await state.client()
    view = await alert_view(client, reply.alert_id)
    if view.lookup is Lookup.NOT_FOUND:
        raise ApiError(404, "alert_not_found", f"no alert {reply.alert_id}")
    if view.status is None or reply.device_id not in view.status.pushed_to:
        raise ApiError(403, "not_pushed_to_device", "this alert was not pushed to this device")
    reply_id = reply.reply_id or f"push:{reply.alert_id}:{reply.action}"
    earlier = view.status.reply if view.status else None
    if view.lookup is Lookup.FINISHED or (earlier and earlier.message_id != reply_id):
        raise ApiError(409, "alert_closed", f"alert {reply.alert_id} no longer takes replies")
    await deliver_push_reply(
        client, reply.alert_id, ReplyOutcome(reply.action), reply_id, datetime.now(UTC)
    )
    return PushReplyAccepted(alert_id=reply.alert_id, status_url=f"/v1/alerts/{reply.alert_id}")
