"""Live interactions: what IVR, chat, the app and the agent desktop report while it happens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.phones import Phone

AttrValue = str | int | float | bool
MAX_ATTRIBUTES = 32
# Events one interaction takes; past it further events are rejected (with that reason), but
# `interaction_ended` always counts, so a long call still closes.
MAX_EVENTS = 500


def takes_event(taken: int, event_type: EventType) -> bool:
    """Whether an interaction that has taken `taken` events takes one more of this type."""
    return taken < MAX_EVENTS or event_type is EventType.INTERACTION_ENDED


class InteractionChannel(StrEnum):
    """Where the customer is."""

    IVR = "ivr"
    CHAT = "chat"
    APP = "app"
    AGENT = "agent"


class EventType(StrEnum):
    """What the interaction system saw the customer do."""

    INTERACTION_STARTED = "interaction_started"
    MENU_SELECTED = "menu_selected"
    SELF_SERVICE_ATTEMPTED = "self_service_attempted"
    SELF_SERVICE_FAILED = "self_service_failed"
    SELF_SERVICE_SUCCEEDED = "self_service_succeeded"
    KEYWORD_DETECTED = "keyword_detected"
    AGENT_NOTE = "agent_note"
    TRANSFER_REQUESTED = "transfer_requested"
    INTERACTION_ENDED = "interaction_ended"


class InteractionEventRequest(BaseModel):
    """Body of `POST /v1/interactions/{interaction_id}/events`."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(
        pattern=SAFE_ID, description="The source's event ID (dedup).", examples=["ev-1"]
    )
    customer_id: str | None = Field(
        default=None,
        pattern=SAFE_ID,
        description="The CRM customer ID; or give `caller`.",
        examples=["cust-0001"],
    )
    # The caller's number (any written form, held as E.164), resolved to a customer through
    # CRM; never stored or forwarded.
    caller: Phone | None = Field(
        default=None, description="The caller's number, resolved through CRM; never stored."
    )
    channel: InteractionChannel = Field(description="Where the interaction happens.")
    # A plain string here so an unknown type gets its own error code, not a generic one.
    type: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="The event type.",
        examples=["interaction_started"],
    )
    attributes: dict[str, AttrValue] = Field(
        default_factory=dict, description="Event attributes (flat values)."
    )
    occurred_at: AwareDatetime = Field(description="When, with a UTC offset.")

    @field_validator("attributes")
    @classmethod
    def _bounded(cls, value: dict[str, AttrValue]) -> dict[str, AttrValue]:
        if len(value) > MAX_ATTRIBUTES:
            raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
        for key, item in value.items():
            if not key or len(key) > 64 or not key.replace("_", "").isalnum():
                raise ValueError(f"attribute name {key[:64]!r} must be 1-64 letters, digits, _")
            if isinstance(item, str) and len(item) > 500:
                raise ValueError(f"attribute {key!r} is longer than 500 characters")
        return value

    @model_validator(mode="after")
    def _one_identity(self) -> InteractionEventRequest:
        if (self.customer_id is None) == (self.caller is None):
            raise ValueError("give exactly one of customer_id and caller")
        return self


class InteractionEvent(BaseModel):
    """One accepted event, as the interaction's workflow sees it (no phone numbers)."""

    event_id: str
    channel: InteractionChannel
    type: EventType
    attributes: dict[str, AttrValue] = Field(default_factory=dict)
    occurred_at: datetime
    accepted_at: datetime
    # Set by the workflow: occurred_at earlier than an event accepted before it.
    out_of_order: bool = False

    def topic(self) -> str | None:
        """The customer's reason this event states, if it states one."""
        value = self.attributes.get("topic")
        # Bounded like the context store's reason column.
        return str(value).strip().lower()[:64] if value is not None else None


class PriorInteraction(BaseModel):
    """An earlier interaction of the same customer (from the context store)."""

    interaction_id: str
    reason: str | None
    started_at: datetime


class InteractionInput(BaseModel):
    """The single argument of InteractionWorkflow."""

    interaction_id: str
    customer_id: str | None
    channel: InteractionChannel
    fi_name: str = "Fiflow Bank"


class NextBestAction(BaseModel):
    """What the IVR or agent desktop should do now, published by a trigger."""

    action: str
    detail: str = ""
    trigger_id: str
    at: datetime


class FiredTrigger(BaseModel):
    """A trigger that fired, and what its actions did."""

    trigger_id: str
    at: datetime
    on_event: str | None
    actions: list[dict[str, Any]] = Field(default_factory=list)


class InteractionState(StrEnum):
    """Where an interaction is."""

    OPEN = "open"
    ENDED = "ended"  # interaction_ended seen; stragglers still accepted for the grace period
    CLOSED = "closed"


class InteractionStatus(BaseModel):
    """The interaction as it stands; also InteractionWorkflow's result."""

    interaction_id: str
    customer_id: str | None
    channel: InteractionChannel
    state: InteractionState = InteractionState.OPEN
    rule_set_version: str | None = None
    reason: str | None = None
    outcome: str | None = None
    events: list[InteractionEvent] = Field(default_factory=list)
    fired: list[FiredTrigger] = Field(default_factory=list)
    next_actions: list[NextBestAction] = Field(default_factory=list)
    repeat_of: list[str] = Field(default_factory=list)
    # Follow-ups that were waiting to chase this customer, stopped because they got in touch.
    stopped_follow_ups: list[str] = Field(default_factory=list)
    started_at: datetime | None = None
    ended_at: datetime | None = None
