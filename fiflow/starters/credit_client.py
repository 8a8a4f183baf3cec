"""Client-side operations on credit applications, shared by the API, the CLI and tests."""

from __future__ import annotations

import contextlib
from datetime import datetime

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from fiflow.domain import search_attributes as sa
from fiflow.domain.credit import (
    CreditApplicationInput,
    CreditApplicationRequest,
    CreditApplicationStatus,
    Decision,
    DocumentsRequest,
    ReviewRequest,
)
from fiflow.domain.keys import credit_workflow_id
from fiflow.integrations.settings import Settings
from fiflow.starters.workflow_views import View, workflow_view
from fiflow.workflows.credit_application import CreditApplicationWorkflow


async def start_application(
    client: Client, settings: Settings, req: CreditApplicationRequest, received_at: datetime
) -> None:
    """Start the application's workflow once per application_id (a repeat starts nothing)."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            CreditApplicationWorkflow.run,
            CreditApplicationInput(request=req, received_at=received_at, fi_name=settings.fi_name),
            id=credit_workflow_id(req.application_id),
            task_queue=settings.task_queue,
            # A concurrent duplicate joins the running application; a finished one is never
            # redone (and never pulls credit again).
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.APPLICATION_ID, req.application_id),
                    SearchAttributePair(sa.PRODUCT, req.product.value),
                    SearchAttributePair(sa.DECISION, Decision.PENDING.value),
                ]
            ),
            static_summary=f"Credit application {req.application_id} ({req.product.value})",
            static_details=(
                f"product `{req.product.value}` · customer `{req.customer_id}` · "
                f"requested {req.requested_amount}"
            ),
        )


async def application_view(client: Client, application_id: str) -> View[CreditApplicationStatus]:
    """The application's current status: a query while it runs, its result once done."""
    return await workflow_view(
        client,
        credit_workflow_id(application_id),
        "CreditApplicationWorkflow",
        CreditApplicationStatus,
    )


class Rejected(Exception):
    """The application refused the update (it does not fit its current state)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


async def _update(
    client: Client,
    application_id: str,
    name: str,
    arg: ReviewRequest | DocumentsRequest,
    update_id: str | None,
) -> CreditApplicationStatus:
    handle = client.get_workflow_handle(credit_workflow_id(application_id))
    try:
        result: CreditApplicationStatus = await handle.execute_update(
            name, arg, id=update_id, result_type=CreditApplicationStatus
        )
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError):
            raise Rejected(cause.type or "rejected", cause.message) from None
        raise
    except RPCError as err:
        # The run finished between the caller's check and the update.
        if err.status is RPCStatusCode.NOT_FOUND:
            raise Rejected("wrong_state", "the application has already finished") from None
        raise
    return result


async def submit_review(
    client: Client, application_id: str, review: ReviewRequest, update_id: str | None = None
) -> CreditApplicationStatus:
    """Deliver a manager's review; Rejected when the application is not awaiting one."""
    return await _update(client, application_id, "review", review, update_id)


async def submit_documents(
    client: Client, application_id: str, docs: DocumentsRequest
) -> CreditApplicationStatus:
    """Deliver the applicant's documents; the submission ID makes a retry the same delivery."""
    return await _update(client, application_id, "documents", docs, f"docs-{docs.submission_id}")
