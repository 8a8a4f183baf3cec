"""SMS gateway: Twilio's Messages API (create), with Twilio's auth and error shapes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from fiflow.sandbox.errors import TwilioError
from fiflow.sandbox.ids import message_sid
from fiflow.sandbox.pipeline import handle_call
from fiflow.sandbox.state import SandboxState, get_state
from fiflow.sandbox.timeutil import iso_now
from fiflow.sandbox.twilio_api import check_basic_auth, message_resource, validate_message

router = APIRouter(tags=["sms"])


@router.post("/2010-04-01/Accounts/{account_sid}/Messages.json", status_code=201)
async def create_message(
    account_sid: str, request: Request, state: SandboxState = Depends(get_state)
) -> Response:
    """Queue an outbound SMS (form-encoded To, From, Body); it lands in the SMS outbox."""
    form = await request.form()
    params = {name: value for name, value in form.items() if isinstance(value, str)}
    config = state.config

    def guard() -> None:
        check_basic_auth(
            request.headers.get("authorization"), config.account_sid, config.sms_auth_token
        )
        if account_sid != config.account_sid:
            raise TwilioError(
                404, 20404, f"The requested resource {request.url.path} was not found"
            )

    def action() -> tuple[int, Any]:
        validate_message(params)
        sid = message_sid()
        resource = message_resource(
            sid=sid,
            account_sid=config.account_sid,
            to=params["To"],
            from_=params.get("From") or config.sms_from,
            body=params["Body"],
            messaging_service_sid=params.get("MessagingServiceSid"),
        )
        state.sms_outbox.add(
            {
                "sid": sid,
                "to": resource["to"],
                "from": resource["from"],
                "body": resource["body"],
                "sent_at": iso_now(),
            }
        )
        return 201, resource

    return await handle_call(state, request, "sms", action, body=params, guard=guard)
