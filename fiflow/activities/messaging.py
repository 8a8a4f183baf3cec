"""Reaching the customer: SMS (honouring opt-outs) and push."""

from __future__ import annotations

import asyncio
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from temporalio import activity

from fiflow.activities.errors import business_errors_are_final
from fiflow.domain.keys import address_hash
from fiflow.integrations.optouts import OptOutStore
from fiflow.integrations.push import PushClient
from fiflow.integrations.sms import SmsClient


class Delivery(StrEnum):
    """What happened to a message."""

    SENT = "sent"
    SUPPRESSED_OPTED_OUT = "suppressed_opted_out"


class SendSms(BaseModel):
    """One SMS. `purpose` says why it went out (it shows in history, the body may be encrypted)."""

    to: str
    body: str
    purpose: str
    idempotency_key: str
    # Only the opt-out confirmation and HELP answers may reach an opted-out number.
    ignore_opt_out: bool = False


class SendPush(BaseModel):
    """One push notification with actions."""

    device_id: str
    title: str
    body: str
    actions: list[str] = Field(default_factory=list)
    data: dict[str, str] = Field(default_factory=dict)
    idempotency_key: str


class SendResult(BaseModel):
    """Outcome of a send."""

    delivery: Delivery
    provider_id: str | None = None


class SetSmsOptOut(BaseModel):
    """An opt-out (or opt-in) keyword from an address."""

    address: str
    opted_out: bool
    keyword: str
    source_message_id: str
    at: datetime


class MessagingActivities:
    """SMS and push sends; opt-outs are checked at the moment of sending."""

    def __init__(self, sms: SmsClient, push: PushClient, optouts: OptOutStore, hash_key: str):
        self._sms = sms
        self._push = push
        self._optouts = optouts
        self._hash_key = hash_key

    @activity.defn(name="send_sms")
    @business_errors_are_final
    async def send_sms(self, req: SendSms) -> SendResult:
        """Send an SMS unless the address opted out."""
        if not req.ignore_opt_out:
            digest = address_hash(self._hash_key, req.to)
            if await asyncio.to_thread(self._optouts.is_opted_out, digest):
                return SendResult(delivery=Delivery.SUPPRESSED_OPTED_OUT)
        sid = await self._sms.send(req.to, req.body, req.idempotency_key)
        return SendResult(delivery=Delivery.SENT, provider_id=sid)

    @activity.defn(name="send_push")
    @business_errors_are_final
    async def send_push(self, req: SendPush) -> SendResult:
        """Send a push notification."""
        push_id = await self._push.send(
            req.device_id, req.title, req.body, req.actions, req.data, req.idempotency_key
        )
        return SendResult(delivery=Delivery.SENT, provider_id=push_id)

    @activity.defn(name="set_sms_opt_out")
    async def set_sms_opt_out(self, req: SetSmsOptOut) -> bool:
        """Store the address's opt-out state; True when it changed."""
        digest = address_hash(self._hash_key, req.address)
        return await asyncio.to_thread(
            self._optouts.set_opted_out,
            digest,
            req.opted_out,
            keyword=req.keyword,
            source_message_id=req.source_message_id,
            at=req.at,
        )
