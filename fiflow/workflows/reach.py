"""Reaching a customer from workflow code: the first channel that takes the message wins."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from fiflow.activities.messaging import Delivery, MessagingActivities, SendPush, SendSms
    from fiflow.domain.customers import Channel, Customer
    from fiflow.workflows.failures import cause_of
    from fiflow.workflows.local_first import local_first
    from fiflow.workflows.options import BACKOFFICE


@dataclass
class Message:
    """One message, as SMS text and as a push notification."""

    purpose: str  # shows in history (the body may be encrypted)
    sms: str
    push_title: str
    push_body: str
    push_actions: list[str] = field(default_factory=list)
    push_data: dict[str, str] = field(default_factory=dict)


@dataclass
class Attempt:
    """What one channel did with the message."""

    channel: Channel
    outcome: str  # done | skipped (opted out) | failed
    detail: str
    idempotency_key: str
    provider_id: str | None = None  # the provider's message ID when it went out


async def reach(
    customer: Customer,
    channels: list[Channel],
    message: Message,
    key_for: Callable[[Channel], str],
    *,
    local: bool = False,
) -> tuple[Channel | None, list[Attempt]]:
    """Try the channels in order; the channel that delivered (or None) and every attempt.

    An SMS the send refuses (opted out, country not allowed) is skipped and the next
    channel is tried; a send that fails for good (after the activity's retries) also moves on.
    `local` sends as a local activity first (`local_first`), inside the caller's workflow task.
    """
    attempts: list[Attempt] = []
    for channel in channels:
        key = key_for(channel)
        try:
            if channel is Channel.SMS and customer.phone:
                sms = SendSms(
                    to=customer.phone,
                    body=message.sms,
                    purpose=message.purpose,
                    idempotency_key=key,
                )
                if local:
                    result = await local_first(MessagingActivities.send_sms, sms)
                else:
                    result = await workflow.execute_activity_method(
                        MessagingActivities.send_sms, sms, **BACKOFFICE
                    )
            elif channel is Channel.PUSH and customer.push_device_id:
                push = SendPush(
                    device_id=customer.push_device_id,
                    title=message.push_title,
                    body=message.push_body,
                    actions=message.push_actions,
                    data=message.push_data,
                    idempotency_key=key,
                )
                if local:
                    result = await local_first(MessagingActivities.send_push, push)
                else:
                    result = await workflow.execute_activity_method(
                        MessagingActivities.send_push, push, **BACKOFFICE
                    )
            else:
                continue
        except FailureError as exc:
            # An ActivityError, or a local activity's final failure unwrapped (ApplicationError).
            attempts.append(Attempt(channel, "failed", cause_of(exc), key))
            continue
        # Not sent (opted out, country not allowed, invalid number): the next channel tries.
        if result.delivery is not Delivery.SENT:
            attempts.append(Attempt(channel, "skipped", result.delivery.skip_reason(), key))
            continue
        attempts.append(Attempt(channel, "done", "", key, result.provider_id))
        return channel, attempts
    return None, attempts
