"""Reaching the customer: SMS (honouring opt-outs) and push."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from fiflow.activities.errors import business_errors_are_final
from fiflow.domain.keys import address_hash
from fiflow.domain.phones import InvalidPhoneNumber, normalise_phone, phone_region
from fiflow.domain.rules import RuleSetError
from fiflow.integrations.optouts import OptOutStore
from fiflow.integrations.push import PushClient
from fiflow.integrations.rules_store import RuleStore
from fiflow.integrations.sms import SmsClient

log = logging.getLogger("fiflow.messaging")


class Delivery(StrEnum):
    """What happened to a message."""

    SENT = "sent"
    SUPPRESSED_OPTED_OUT = "suppressed_opted_out"
    # The number's country is not in the rules' sms_countries.
    SUPPRESSED_COUNTRY = "suppressed_country"
    # Not a valid phone number (entry points refuse these; this is the last line).
    SUPPRESSED_INVALID_NUMBER = "suppressed_invalid_number"

    def skip_reason(self) -> str:
        """Why a message with this outcome was not sent (for attempt records)."""
        return SKIP_REASONS.get(self, "")


SKIP_REASONS = {
    Delivery.SUPPRESSED_OPTED_OUT: "address opted out",
    Delivery.SUPPRESSED_COUNTRY: "country not allowed for SMS",
    Delivery.SUPPRESSED_INVALID_NUMBER: "not a valid phone number",
}


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
    """SMS and push sends; opt-outs and the SMS country allowlist are checked when sending.

    The allowlist is read here, from the active alert rule set through the same cached
    store the rule-loading activities use, rather than passed in by each workflow: every
    flow that texts (alerts, conversations, follow-ups) is covered by one check that no
    workflow can forget, and a country taken off the list stops texts from runs already in
    flight, like an opt-out does. Each send's outcome is still recorded in its history.
    """

    def __init__(
        self,
        sms: SmsClient,
        push: PushClient,
        optouts: OptOutStore,
        hash_key: str,
        rules: RuleStore,
    ):
        self._sms = sms
        self._push = push
        self._optouts = optouts
        self._hash_key = hash_key
        self._rules = rules
        self._last_countries: frozenset[str] | None = None

    @activity.defn(name="send_sms")
    @business_errors_are_final
    async def send_sms(self, req: SendSms) -> SendResult:
        """Send an SMS unless the number is invalid, outside the allowed countries, or opted out."""
        try:
            to = normalise_phone(req.to)
            region = phone_region(to)
        except InvalidPhoneNumber:
            return SendResult(delivery=Delivery.SUPPRESSED_INVALID_NUMBER)
        if region not in await self._sms_countries():
            return SendResult(delivery=Delivery.SUPPRESSED_COUNTRY)
        if not req.ignore_opt_out:
            digest = address_hash(self._hash_key, to)
            if await asyncio.to_thread(self._optouts.is_opted_out, digest):
                return SendResult(delivery=Delivery.SUPPRESSED_OPTED_OUT)
        sid = await self._sms.send(to, req.body, req.idempotency_key)
        # The purpose says which message it was; never the number or the text.
        activity.logger.info("sms sent: %s", req.purpose)
        return SendResult(delivery=Delivery.SENT, provider_id=sid)

    async def _sms_countries(self) -> frozenset[str]:
        """The active rule set's SMS countries; the last good list while the rules are broken."""
        try:
            rules = await asyncio.to_thread(self._rules.alert_rules)
        except RuleSetError as exc:
            if self._last_countries is not None:
                log.warning("alert rules unreadable, keeping the last SMS countries: %s", exc)
                return self._last_countries
            # Never guess an allowlist: retry until an operator fixes the rules.
            raise ApplicationError(str(exc), type="rules.invalid") from exc
        self._last_countries = frozenset(rules.sms_countries)
        return self._last_countries

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
        try:
            digest = address_hash(self._hash_key, req.address)
        except InvalidPhoneNumber as exc:
            # Only the webhook's validated senders get here; retrying would not help.
            raise ApplicationError(str(exc), type="phone.invalid", non_retryable=True) from exc
        return await asyncio.to_thread(
            self._optouts.set_opted_out,
            digest,
            req.opted_out,
            keyword=req.keyword,
            source_message_id=req.source_message_id,
            at=req.at,
        )
