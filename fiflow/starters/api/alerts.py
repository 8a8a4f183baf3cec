"""`/v1/alerts`: the FI's alerting system reports questionable activity; anyone may look."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from fiflow.domain.alerts import SAFE_ID, AlertRequest, AlertStatus
from fiflow.domain.customers import Customer
from fiflow.domain.rules import RuleSetError
from fiflow.integrations.settings import ROLES
from fiflow.starters.alerts_client import alert_view, start_alert
from fiflow.starters.api.auth import Identity, customer_scope, ensure_owner, require
from fiflow.starters.api.crm_reads import crm_read, unknown_customer
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.openapi import JSON_BODY, KEYED, PARAMS, UPSTREAM, errors
from fiflow.starters.api.state import ApiState, api_state
from fiflow.starters.workflow_views import Lookup

log = logging.getLogger("fiflow.api")
router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=errors(*KEYED))


class AlertAccepted(BaseModel):
    """The alert exists (new or the same event again) and will run."""

    alert_id: str = Field(description="The alert's ID.", examples=["al-7f3a9c2e"])
    status_url: str = Field(
        description="Where to read the alert's state.", examples=["/v1/alerts/al-7f3a9c2e"]
    )


class AlertView(BaseModel):
    """An alert: where it is, the channel, the reply, the decision and the actions taken."""

    alert_id: str = Field(description="The alert's ID.", examples=["al-7f3a9c2e"])
    run_status: str = Field(
        description="The workflow run's status (RUNNING, COMPLETED, ...).", examples=["RUNNING"]
    )
    status: AlertStatus | None = Field(
        description="The alert's state, channel, reply, decision and actions; null until the "
        "run first answers."
    )


@router.post(
    "",
    status_code=202,
    response_model=AlertAccepted,
    dependencies=[require("system")],
    operation_id="alerts_create",
    summary="Report questionable activity",
    responses=errors(*JSON_BODY, *UPSTREAM),
)
async def post_alert(req: AlertRequest, state: ApiState = Depends(api_state)) -> AlertAccepted:
    """Start a fraud alert; the same `source_event_id` always yields the same alert."""
    # The CRM round trip is the slow part of a POST: it runs while the alert type is checked
    # (a thread, as the rule store may read the database), not after. The type's answer still
    # comes first, so a request wrong in both ways always gets the same error.
    customer_check = asyncio.ensure_future(_check_customer(state, req))
    try:
        await _check_alert_type(state, req.alert_type)
    except BaseException:
        customer_check.cancel()
        customer_check.add_done_callback(_discard_outcome)
        raise
    customer = await customer_check
    client = await state.client()
    # The profile just read goes with the alert: its preparation reads the CRM no second time.
    alert_id = await start_alert(client, state.settings, req, datetime.now(UTC), customer)
    return AlertAccepted(alert_id=alert_id, status_url=f"/v1/alerts/{alert_id}")


@router.get(
    "/{alert_id}",
    response_model=AlertView,
    operation_id="alerts_get",
    summary="Read an alert",
    responses=errors(404, *PARAMS, *UPSTREAM),
)
async def get_alert(
    alert_id: str = Path(pattern=SAFE_ID),
    state: ApiState = Depends(api_state),
    identity: Identity = require(*ROLES),
) -> AlertView:
    """The alert's state, channel, reply, decision and actions (a channel: its customer's)."""
    scope = customer_scope(identity)
    view = await alert_view(await state.client(), alert_id)
    not_found = ApiError(404, "alert_not_found", f"no alert {alert_id}")
    if view.lookup is Lookup.NOT_FOUND:
        raise not_found
    ensure_owner(scope, view.status.customer_id if view.status else None, not_found)
    return AlertView(alert_id=alert_id, run_status=view.run_status, status=view.status)


def _discard_outcome(task: asyncio.Future[Customer | None]) -> None:
    # A check whose answer no longer matters: read its outcome so asyncio does not log it.
    if not task.cancelled():
        task.exception()


async def _check_alert_type(state: ApiState, alert_type: str) -> None:
    try:
        rules = await asyncio.to_thread(state.rules.alert_rules)
    except RuleSetError as exc:
        # The rule file is broken: the workflow would wait for a fix; take the alert anyway.
        log.error("alert rules unreadable, accepting alert unchecked: %s", exc)
        return
    if rules.policy(alert_type) is None:
        known = ", ".join(sorted(rules.alert_types))
        raise ApiError(
            422, "unknown_alert_type", f"alert_type {alert_type!r} is not one of: {known}"
        )


async def _check_customer(state: ApiState, req: AlertRequest) -> Customer | None:
    """The customer, checked to exist and to hold the card; None if the CRM did not answer."""
    assert state.crm is not None
    customer = await crm_read(
        state.crm.get_customer(req.customer_id),
        missing=unknown_customer(req.customer_id),
        strict=False,
        what="customer check",
    )
    if customer is None:
        return None
    cards = {c.last4 for c in customer.cards}
    if cards and req.transaction.card_last4 not in cards:
        raise ApiError(
            422,
            "unknown_card",
            f"customer {req.customer_id} has no card ending {req.transaction.card_last4}",
        )
    return customer
