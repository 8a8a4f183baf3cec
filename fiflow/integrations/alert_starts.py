"""Starting alerts on Temporal, once per source event, from any process.

The API (`POST /v1/alerts`), the stream consumer and the batch workflow's activities all
start alerts through these functions, so an alert started from a stream message, from a
batch file row and from the FI's alerting system for the same event is one alert. Workflows
are named by type here (not imported): integrations sit below the workflow layer.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.common import TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from fiflow.domain.alert_start import alert_details, alert_search_attributes, alert_summary
from fiflow.domain.alerts import AlertInput, AlertRequest, AlertSource
from fiflow.domain.customers import Customer
from fiflow.domain.feeds.matches import NoticeRequest
from fiflow.domain.keys import alert_id_for, alert_workflow_id, notice_id_for, notice_workflow_id
from fiflow.domain.notices import (
    NoticeInput,
    notice_details,
    notice_search_attributes,
    notice_summary,
)
from fiflow.domain.push_binding import alert_push_key
from fiflow.integrations.settings import Settings

FRAUD_ALERT_WORKFLOW = "FraudAlertWorkflow"
NOTICE_WORKFLOW = "InformationalAlertWorkflow"


async def start_fraud_alert(
    client: Client,
    settings: Settings,
    req: AlertRequest,
    received_at: datetime,
    source: AlertSource = "alerting_system",
    customer: Customer | None = None,
) -> str:
    """Start the alert's workflow once per source event; returns the alert ID either way.

    `customer`: the profile the caller has just read, handed on so the alert needs no
    second CRM read.

    `source` (the alerting system, the stream, a batch file) labels its business metrics.
    """
    alert_id = alert_id_for(settings.address_hash_key.get_secret_value(), req.source_event_id)
    inp = AlertInput(
        alert_id=alert_id,
        request=req,
        received_at=received_at,
        fi_name=settings.fi_name,
        push_key=alert_push_key(settings.push_token_key.get_secret_value(), alert_id),
        source=source,
        customer=customer,
    )
    await _start_once(
        client,
        settings,
        FRAUD_ALERT_WORKFLOW,
        inp,
        workflow_id=alert_workflow_id(alert_id),
        search_attributes=alert_search_attributes(inp),
        summary=alert_summary(inp),
        details=alert_details(inp),
    )
    return alert_id


async def start_stream_fraud_alert(
    client: Client, settings: Settings, req: AlertRequest, received_at: datetime
) -> str:
    """`start_fraud_alert` for an alert the transaction stream raised."""
    return await start_fraud_alert(client, settings, req, received_at, source="stream")


def notice_id(settings: Settings, req: NoticeRequest) -> str:
    """The notice's ID: the same source event always names the same notice."""
    return notice_id_for(settings.address_hash_key.get_secret_value(), req.source_event_id)


async def start_notice(
    client: Client, settings: Settings, req: NoticeRequest, received_at: datetime
) -> str:
    """Start the notice's workflow once per source event; returns the notice ID either way."""
    nid = notice_id(settings, req)
    inp = NoticeInput(notice_id=nid, request=req, received_at=received_at, fi_name=settings.fi_name)
    await _start_once(
        client,
        settings,
        NOTICE_WORKFLOW,
        inp,
        workflow_id=notice_workflow_id(nid),
        search_attributes=notice_search_attributes(inp),
        summary=notice_summary(inp),
        details=notice_details(inp),
    )
    return nid


async def _start_once(
    client: Client,
    settings: Settings,
    workflow: str,
    inp: BaseModel,
    *,
    workflow_id: str,
    search_attributes: TypedSearchAttributes,
    summary: str,
    details: str,
) -> None:
    """Start a workflow once per business key: a running duplicate joins it, a finished
    one is never redone (the same event always gets the same ID back)."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            workflow,
            inp,
            id=workflow_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes,
            static_summary=summary,
            static_details=details,
        )
