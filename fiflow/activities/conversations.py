"""Registering an alert with the customer's conversation (signal-with-start through the client)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from fiflow.domain.conversations import (
    ConversationInput,
    ConversationSnapshot,
    OpenAlert,
    RegisterAlert,
)
from fiflow.domain.keys import address_hash, conversation_workflow_id, pick_reply_code

# Names, not imports: activities sit below workflows and must not import them.
CONVERSATION_WORKFLOW = "ConversationWorkflow"
REGISTER_SIGNAL = "register_alert"
SNAPSHOT_QUERY = "snapshot"


class RegisterAlertWithConversation(BaseModel):
    """An alert that will wait for a reply on this SMS address."""

    address: str
    alert_id: str
    summary: str
    registered_at: datetime


class Registration(BaseModel):
    """Where the alert is registered and the code its messages carry."""

    reply_code: str
    conversation_id: str


class ConversationActivities:
    """Talks to conversation workflows through the Temporal client."""

    def __init__(self, client: Client, hash_key: str, fi_name: str, help_text: str):
        self._client = client
        self._hash_key = hash_key
        self._fi_name = fi_name
        self._help_text = help_text

    async def _codes_in_use(self, workflow_id: str) -> set[str]:
        handle = self._client.get_workflow_handle(workflow_id)
        try:
            snap = await handle.query(SNAPSHOT_QUERY, result_type=ConversationSnapshot)
        except (RPCError, WorkflowQueryFailedError):
            return set()  # no conversation yet: every code is free
        return {a.reply_code for a in snap.open_alerts}

    @activity.defn(name="register_alert_with_conversation")
    async def register_alert(self, req: RegisterAlertWithConversation) -> Registration:
        """Pick a reply code no other open alert of the address uses, register; returns the code."""
        digest = address_hash(self._hash_key, req.address)
        workflow_id = conversation_workflow_id("sms", digest)
        code = pick_reply_code(req.alert_id, await self._codes_in_use(workflow_id))
        alert = OpenAlert(
            alert_id=req.alert_id,
            reply_code=code,
            summary=req.summary,
            registered_at=req.registered_at,
        )
        await self._client.start_workflow(
            CONVERSATION_WORKFLOW,
            ConversationInput(
                address=req.address,
                address_digest=digest,
                fi_name=self._fi_name,
                help_text=self._help_text,
            ),
            id=workflow_id,
            task_queue=activity.info().task_queue,
            start_signal=REGISTER_SIGNAL,
            start_signal_args=[RegisterAlert(alert=alert)],
            static_summary="SMS conversation",
        )
        return Registration(reply_code=code, conversation_id=workflow_id)
