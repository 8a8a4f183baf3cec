"""What every start of a FraudAlertWorkflow sets for ops, whoever starts it (API or a trigger)."""

from __future__ import annotations

from temporalio.common import SearchAttributePair, TypedSearchAttributes

from fiflow.domain import search_attributes as sa
from fiflow.domain.alerts import AlertInput, AlertState


def alert_search_attributes(inp: AlertInput) -> TypedSearchAttributes:
    """The alert's search attributes at start (no personal data).

    The state starts as "awaiting_reply": the alert texts the customer in its first workflow
    task, so from the outside it is waiting for them from the start. Set here, it is free;
    the same value upserted from the workflow is a billed action on every alert (issue 12).
    The workflow upserts "starting" only when its preparation falls back to step-by-step
    (a back office down), so an alert stuck there does not look sent.
    """
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.ALERT_ID, inp.alert_id),
            SearchAttributePair(sa.ALERT_TYPE, inp.request.alert_type),
            SearchAttributePair(sa.ALERT_STATE, AlertState.AWAITING_REPLY.value),
        ]
    )


def alert_summary(inp: AlertInput) -> str:
    """The Web UI's one-line summary."""
    return f"Fraud alert {inp.alert_id} ({inp.request.alert_type})"


def alert_details(inp: AlertInput) -> str:
    """The Web UI's static details."""
    req = inp.request
    return (
        f"alert type `{req.alert_type}` · customer `{req.customer_id}` · "
        f"amount {req.transaction.display_amount()} at {req.transaction.display_merchant()}"
    )
