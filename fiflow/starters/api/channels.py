"""`/v1/channels/...`: customers' replies, from the SMS provider's webhook and from push."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client

from fiflow.domain.alerts import SAFE_ID, AlertStatus, ReplyOutcome
from fiflow.domain.keys import address_hash, keyed_hash
from fiflow.domain.phones import InvalidPhoneNumber, normalise_phone
from fiflow.domain.push_binding import push_token_is_valid
from fiflow.integrations.inbox import has_pending as inbox_has_pending
from fiflow.integrations.twilio_signature import is_valid_signature
from fiflow.starters.alerts_client import (
    alert_view,
    deliver_push_reply,
    deliver_sms,
)
from fiflow.starters.api.auth import require
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.inbox_relay import (
    bounded,
    push_content,
    sms_content,
    temporal_unavailable,
)
from fiflow.starters.api.openapi import JSON_BODY, KEYED, SERVER, UPSTREAM, errors
from fiflow.starters.api.state import ApiState, api_state
from fiflow.starters.workflow_views import Lookup, View

log = logging.getLogger("fiflow.api")
router = APIRouter(prefix="/v1/channels", tags=["channels"])

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
# A ledger call slower than this is given up on: the provider times the webhook out at 15 s.
LEDGER_TIMEOUT_S = 2.0

T = TypeVar("T")


@router.post(
    "/sms/inbound",
    response_class=Response,
    operation_id="channels_sms_inbound",
    summary="SMS provider webhook (Twilio-signed)",
    # Signed by the provider, not keyed: no 401 or 429. 403 for a missing or wrong signature.
    responses={
        200: {
            "description": "Taken (or a replay, dropped): an empty TwiML answer.",
            "content": {"text/xml": {"schema": {"type": "string"}}},
        },
        **errors(400, 403, 413, 422, *UPSTREAM, *SERVER),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "From": {"type": "string", "description": "The sender's number."},
                            "Body": {"type": "string", "description": "The message text."},
                            "MessageSid": {
                                "type": "string",
                                "description": "The provider's message ID.",
                            },
                            "AccountSid": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
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
    body = body[:1600]
    digest = address_hash(settings.address_hash_key.get_secret_value(), sender)
    content = sms_content(sender, body, received_at)
    # Older messages of this sender still wait in the inbox: this one queues behind them.
    # (One racing an older message that is still on its way to Temporal can overtake it:
    # the order is kept from the moment a message is queued.)
    if await _inbox_pending(state, digest):
        await _queue(state, "sms", digest, message_id, content, received_at, None)
        return Response(EMPTY_TWIML, media_type="text/xml")
    try:
        await bounded(_deliver_sms(state, sender, body, message_id, received_at), state.settings)
    except Exception as exc:
        # The provider does not retry a 5xx: while Temporal is away the inbox keeps it.
        if not temporal_unavailable(exc):
            raise
        await _queue(state, "sms", digest, message_id, content, received_at, exc)
        return Response(EMPTY_TWIML, media_type="text/xml")
    # Recorded only once delivered (or queued): a failed delivery answers 5xx and the
    # provider's retry must get through. A duplicate racing in between is caught by the
    # conversation's dedup.
    await _ledger_call("record", ledger.record, message_id, received_at)
    return Response(EMPTY_TWIML, media_type="text/xml")


async def _deliver_sms(
    state: ApiState, sender: str, body: str, message_id: str, received_at: datetime
) -> None:
    await deliver_sms(
        await state.client(),
        state.settings,
        sender=sender,
        body=body,
        message_id=message_id,
        received_at=received_at,
    )


async def _inbox_pending(state: ApiState, digest: str) -> bool:
    """Whether the inbox holds messages of this address; False (and a warning) if unknown."""
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(inbox_has_pending, state.engine, digest), LEDGER_TIMEOUT_S
        )
    except (SQLAlchemyError, TimeoutError) as exc:
        log.warning("inbox check failed: %s", type(exc).__name__)
        return False


async def _queue(
    state: ApiState,
    channel: str,
    digest: str,
    message_id: str,
    content: dict[str, Any],
    received_at: datetime,
    cause: Exception | None,
) -> None:
    """Keep the message in the inbox for the relay; the original failure if that fails too."""
    try:
        added = await asyncio.to_thread(
            state.inbox().add, channel, digest, message_id, content, received_at
        )
    except Exception as exc:
        # The type only: a driver's message can quote the parameters.
        log.error("inbox store failed: %s", type(exc).__name__)
        if cause is not None:
            raise cause from None
        raise ApiError(503, "temporal_unavailable", "the workflow service is unavailable") from None
    log.warning(
        "%s message %s %s in the inbox until temporal is back",
        channel,
        message_id,
        "queued" if added else "already",
    )
    if channel == "sms":
        # A provider retry of a queued message is dropped by the ledger, like a delivered one.
        await _ledger_call("record", state.message_ledger.record, message_id, received_at)


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

    alert_id: str = Field(pattern=SAFE_ID, description="The alert.", examples=["al-7f3a9c2e"])
    action: Literal["confirm", "contest"] = Field(
        description="`confirm`: the customer made the transaction; `contest`: they did not."
    )
    # The device the app runs on and the `reply_token` its push carried: together they prove
    # the reply comes from the device fiflow pushed this alert to.
    device_id: str = Field(
        min_length=1, max_length=128, description="The app's device ID.", examples=["dev-42"]
    )
    token: str = Field(min_length=1, max_length=128, description="The push's `data.reply_token`.")
    # The app's own ID for this tap; taps resent with the same ID count once.
    reply_id: str | None = Field(
        default=None, pattern=SAFE_ID, description="The app's ID for this tap (dedup)."
    )


class PushReplyAccepted(BaseModel):
    """The reply reached the alert."""

    alert_id: str = Field(description="The alert.", examples=["al-7f3a9c2e"])
    status_url: str = Field(
        description="Where to read the alert's state.", examples=["/v1/alerts/al-7f3a9c2e"]
    )
    # `queued`: Temporal could not take it now; the API keeps it and delivers it (after the
    # same checks) as soon as Temporal is back. Either way the app need not resend.
    delivery: Literal["delivered", "queued"] = Field(
        default="delivered",
        description="`delivered` to the alert, or `queued` in the inbox until Temporal is back.",
    )


@router.post(
    "/push/replies",
    status_code=202,
    response_model=PushReplyAccepted,
    dependencies=[require("channel")],
    operation_id="channels_push_reply",
    summary="A push action from the app",
    responses=errors(*KEYED, *JSON_BODY, 404, 409, *UPSTREAM),
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
    reply_id = reply.reply_id or f"push:{reply.alert_id}:{reply.action}"
    received_at = datetime.now(UTC)
    status_url = f"/v1/alerts/{reply.alert_id}"
    queued = PushReplyAccepted(alert_id=reply.alert_id, status_url=status_url, delivery="queued")
    # Queued per alert: replies to one alert reach it in the order they came.
    digest = keyed_hash(state.settings.address_hash_key.get_secret_value(),
                        f"push-alert:{reply.alert_id}")  # fmt: skip
    content = push_content(reply.alert_id, reply.action, reply.device_id, reply_id, received_at)
    if await _inbox_pending(state, digest):
        await _queue(state, "push", digest, reply_id, content, received_at, None)
        return queued
    try:
        client, view = await bounded(_push_view(state, reply.alert_id), state.settings)
    except Exception as exc:
        # The token proved alert and device; the relay runs the alert's checks once it can.
        if not temporal_unavailable(exc):
            raise
        await _queue(state, "push", digest, reply_id, content, received_at, exc)
        return queued
    if view.lookup is Lookup.NOT_FOUND:
        raise ApiError(404, "alert_not_found", f"no alert {reply.alert_id}")
    if view.status is None or reply.device_id not in view.status.pushed_to:
        raise ApiError(403, "not_pushed_to_device", "this alert was not pushed to this device")
    earlier = view.status.reply if view.status else None
    if view.lookup is Lookup.FINISHED or (earlier and earlier.message_id != reply_id):
        raise ApiError(409, "alert_closed", f"alert {reply.alert_id} no longer takes replies")
    try:
        await bounded(
            deliver_push_reply(
                client, reply.alert_id, ReplyOutcome(reply.action), reply_id, received_at
            ),
            state.settings,
        )
    except Exception as exc:
        if not temporal_unavailable(exc):
            raise
        await _queue(state, "push", digest, reply_id, content, received_at, exc)
        return queued
    return PushReplyAccepted(alert_id=reply.alert_id, status_url=status_url)


async def _push_view(state: ApiState, alert_id: str) -> tuple[Client, View[AlertStatus]]:
    client = await state.client()
    return client, await alert_view(client, alert_id)
