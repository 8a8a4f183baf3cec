"""The customer as fiflow sees it: how to reach them and which cards they hold."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class Channel(StrEnum):
    """A channel fiflow can reach a customer on."""

    SMS = "sms"
    PUSH = "push"


class Card(BaseModel):
    """A payment card, known by its last four digits only."""

    card_id: str
    last4: str
    status: str = "active"


class Customer(BaseModel):
    """A customer profile as read from the CRM (PII: lives only in encrypted payloads)."""

    customer_id: str
    name: str = ""
    phone: str | None = None
    push_device_id: str | None = None
    preferred_channel: Channel = Channel.SMS
    timezone: str = "UTC"
    language: str = "en"
    cards: list[Card] = Field(default_factory=list)

    def reachable_by(self, channel: Channel) -> bool:
        """Whether the customer has an address on that channel."""
        return bool(self.phone) if channel is Channel.SMS else bool(self.push_device_id)


def other_channel(channel: Channel) -> Channel:
    """The channel that is not this one."""
    return Channel.PUSH if channel is Channel.SMS else Channel.SMS


def channel_order(customer: Customer) -> list[Channel]:
    """Channels to try, best first: push only when the customer has a device and prefers it."""
    if customer.preferred_channel is Channel.PUSH and customer.push_device_id:
        order = [Channel.PUSH, Channel.SMS]
    else:
        order = [Channel.SMS, Channel.PUSH]
    return [c for c in order if customer.reachable_by(c)]
