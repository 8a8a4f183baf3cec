"""Client-side operations on alerts and conversations, shared by the API, the CLI and tests."""

from __future__ import annotations

from datetime import datetime

from temporalio.client import Client

from fiflow.activities.conversations import auto_reply_limit
from fiflow.domain.alerts import (
    AlertRequest,
    AlertStatus,
    CustomerReply,
    ReplyOutcome,
)
from fiflow.domain.conversations import ConversationInput, InboundMessage
from fiflow.domain.customers import Channel, Customer
from fiflow.domain.keys import (
    address_hash,
    alert_workflow_id,
    conversation_workflow_id,
)
from fiflow.domain.phones import normalise_phone
from fiflow.integrations.alert_starts import start_fraud_alert
from fiflow.integrations.settings import Settings
from fiflow.starters.workflow_views import View, workflow_view
from fiflow.workflows.conversation import ConversationWorkflow
from fiflow.workflows.fraud_alert import FraudAlertWorkflow


async def start_alert(
    client: Client,
    settings: Settings,
    req: AlertRequest,
    received_at: datetime,
    customer: Customer | None = None,
) -> str:
    """Start the alert's workflow once per source event; returns the alert ID either way."""
    return await start_fraud_alert(client, settings, req, received_at, customer=customer)


async def alert_view(client: Client, alert_id: str) -> View[AlertStatus]:
    """The alert's current status: a query while it runs, its result once done."""
    return await workflow_view(
        client, alert_workflow_id(alert_id), "FraudAlertWorkflow", AlertStatus
    )


async def deliver_sms(
    client: Client,
    settings: Settings,
    *,
    sender: str,
    body: str,
    message_id: str,
    received_at: datetime,
) -> str:
    """Hand an inbound SMS to its conversation (started if needed); returns the workflow ID.

    InvalidPhoneNumber when the sender is not a valid number (the webhook refuses those first).
    """
    # The conversation texts back to this address: always the E.164 form.
    sender = normalise_phone(sender)
    digest = address_hash(settings.address_hash_key.get_secret_value(), sender)
    workflow_id = conversation_workflow_id("sms", digest)
    await client.start_workflow(
        ConversationWorkflow.run,
        ConversationInput(
            address=sender,
            address_digest=digest,
            fi_name=settings.fi_name,
            help_text=settings.fi_help_text,
            auto_replies=auto_reply_limit(settings),
        ),
        id=workflow_id,
        task_queue=settings.task_queue,
        start_signal="inbound_message",
        start_signal_args=[
            InboundMessage(message_id=message_id, body=body, received_at=received_at)
        ],
        static_summary="SMS conversation",
    )
    return workflow_id


async def deliver_push_reply(
    client: Client, alert_id: str, outcome: ReplyOutcome, reply_id: str, received_at: datetime
) -> None:
    """Signal a push action straight to its alert (the caller checked it is open)."""
    handle = client.get_workflow_handle(alert_workflow_id(alert_id))
    await handle.signal(
        FraudAlertWorkflow.customer_reply,
        CustomerReply(
            outcome=outcome,
            channel=Channel.PUSH,
            message_id=reply_id,
            received_at=received_at,
            routed_by="push action",
        ),
    )
