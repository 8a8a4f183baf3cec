"""Registering an alert with the customer's conversation (update-with-start through the client)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from fiflow.domain.conversations import (
    AlertCap,
    AlertRegistration,
    AutoReplyLimit,
    ConversationInput,
    RegisterAlert,
)
from fiflow.domain.keys import address_hash, alert_workflow_id, conversation_workflow_id
from fiflow.integrations.settings import Settings

# Names, not imports: activities sit below workflows and must not import them.
CONVERSATION_WORKFLOW = "ConversationWorkflow"
REGISTER_UPDATE = "register_alert"


class RegisterAlertWithConversation(BaseModel):
    """An alert that will wait for a reply on this SMS address."""

    address: str
    alert_id: str
    summary: str
    registered_at: datetime
    cap: AlertCap | None = None  # set when the alert goes out by SMS


class AlertsStillRunning(BaseModel):
    """Alerts a conversation holds open; which of them still run?"""

    alert_ids: list[str]


class Registration(BaseModel):
    """Where the alert is registered and the code its messages carry."""

    reply_code: str
    conversation_id: str
    merged: bool = False  # over the cap: no SMS of its own, a digest lists it
    opted_out: bool = False  # the address sent STOP (stored or not yet): no SMS to it


def auto_reply_limit(settings: Settings) -> AutoReplyLimit:
    """The unsolicited-answer limit new conversations get (the same from every starter)."""
    return AutoReplyLimit(
        max_answers=settings.sms_auto_replies_max,
        window=timedelta(seconds=settings.sms_auto_replies_window_seconds),
    )


class ConversationActivities:
    """Talks to conversation workflows through the Temporal client."""

    def __init__(
        self,
        client: Client,
        hash_key: str,
        fi_name: str,
        help_text: str,
        *,
        auto_replies: AutoReplyLimit,
    ):
        self._client = client
        self._hash_key = hash_key
        self._fi_name = fi_name
        self._help_text = help_text
        self._auto_replies = auto_replies

    @activity.defn(name="register_alert_with_conversation")
    async def register_alert(self, req: RegisterAlertWithConversation) -> Registration:
        """Register the alert with the address's conversation, starting it if needed.

        One round trip (update-with-start): the conversation picks the reply code, so two
        alerts registering at once can never get the same code. Retries are safe: the update
        ID is the alert's, and the conversation returns a known alert's code unchanged.
        """
        digest = address_hash(self._hash_key, req.address)
        workflow_id = conversation_workflow_id("sms", digest)
        start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            CONVERSATION_WORKFLOW,
            ConversationInput(
                address=req.address,
                address_digest=digest,
                fi_name=self._fi_name,
                help_text=self._help_text,
                auto_replies=self._auto_replies,
            ),
            id=workflow_id,
            task_queue=activity.info().task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary="SMS conversation",
        )
        registration = await self._client.execute_update_with_start_workflow(
            REGISTER_UPDATE,
            RegisterAlert(
                alert_id=req.alert_id,
                summary=req.summary,
                registered_at=req.registered_at,
                cap=req.cap,
            ),
            start_workflow_operation=start,
            id=f"register-{req.alert_id}",
            result_type=AlertRegistration,
        )
        return Registration(
            reply_code=registration.reply_code,
            conversation_id=workflow_id,
            merged=registration.merged,
            opted_out=registration.opted_out,
        )

    @activity.defn(name="alerts_still_running")
    async def alerts_still_running(self, req: AlertsStillRunning) -> list[str]:
        """Of these alerts, the ones whose workflow still runs (the rest failed, were
        terminated or timed out without telling their conversation)."""
        running = []
        for alert_id in req.alert_ids:
            handle = self._client.get_workflow_handle(alert_workflow_id(alert_id))
            try:
                described = await handle.describe()
            except RPCError as exc:
                if exc.status is RPCStatusCode.NOT_FOUND:
                    continue
                raise  # unsure: retried, and no alert is dropped on a guess
            if described.status is WorkflowExecutionStatus.RUNNING:
                running.append(alert_id)
        return running
