"""Customer SMS replies, delivered to the webhook exactly as Twilio delivers them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, Depends

from fiflow.sandbox.errors import SandboxError
from fiflow.sandbox.ids import message_sid
from fiflow.sandbox.models import InboundSmsRequest
from fiflow.sandbox.state import SandboxState, get_state
from fiflow.sandbox.twilio_api import API_VERSION, num_segments
from fiflow.sandbox.twilio_signature import compute_signature

router = APIRouter(prefix="/__sandbox", tags=["sandbox"])


def webhook_params(
    message: InboundSmsRequest, sid: str, account_sid: str, to: str
) -> dict[str, str]:
    """The form Twilio posts for an incoming SMS."""
    return {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "Body": message.body,
        "From": message.from_,
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": str(num_segments(message.body)),
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "To": to,
    }


@router.post("/sms/inbound")
async def deliver_inbound(
    message: InboundSmsRequest, state: SandboxState = Depends(get_state)
) -> dict[str, Any]:
    """Deliver a customer's reply to the SMS webhook, signed with X-Twilio-Signature."""
    config = state.config
    sid = message.message_sid or message_sid()
    url = config.sms_webhook_url
    params = webhook_params(message, sid, config.account_sid, message.to or config.sms_from)
    headers = {
        "X-Twilio-Signature": compute_signature(config.sms_auth_token, url, params),
        "User-Agent": "TwilioProxy/1.1",
    }

    def record(status_code: int) -> None:
        state.calls.record(
            system="sms",
            method="WEBHOOK",
            path=urlsplit(url).path,
            query=None,
            idempotency_key=None,
            body=params,
            status_code=status_code,
        )

    try:
        response = await state.http_client().post(url, data=params, headers=headers)
    except httpx.TransportError as exc:
        record(502)
        raise SandboxError(
            502, "webhook_unreachable", f"Could not deliver to {url}: {type(exc).__name__} {exc}"
        ) from exc
    record(response.status_code)
    return {
        "message_sid": sid,
        "webhook_status": response.status_code,
        "webhook_body": response.text,
    }
