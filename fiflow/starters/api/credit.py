"""`/v1/credit-applications`: channel apps submit and follow applications; managers review."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from decimal import Decimal

from fastapi import APIRouter, Depends, Header, Path
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.credit import (
    FINISHED_STATES,
    MAX_AMOUNT,
    ApplicationState,
    CreditApplicationRequest,
    CreditApplicationStatus,
    DocumentsRequest,
    ReviewDecision,
    ReviewRequest,
)
from fiflow.domain.credit_rules import request_problems
from fiflow.domain.rules import RuleSetError
from fiflow.integrations.settings import PERSON_ID
from fiflow.starters.api.auth import Identity, customer_scope, ensure_owner, require
from fiflow.starters.api.crm_reads import crm_read, unknown_customer
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.openapi import JSON_BODY, KEYED, PARAMS, UPSTREAM, errors
from fiflow.starters.api.state import ApiState, api_state
from fiflow.starters.credit_client import (
    Rejected,
    application_view,
    start_application,
    submit_documents,
    submit_review,
)
from fiflow.starters.workflow_views import Lookup

log = logging.getLogger("fiflow.api")
router = APIRouter(
    prefix="/v1/credit-applications", tags=["credit applications"], responses=errors(*KEYED)
)
APPLICATION_ID = Path(pattern=SAFE_ID)


class ApplicationAccepted(BaseModel):
    """The application exists (new, or the same application_id again) and runs."""

    application_id: str = Field(description="The application.", examples=["app-2026-0001"])
    status_url: str = Field(
        description="Where to read its state.", examples=["/v1/credit-applications/app-2026-0001"]
    )


class ApplicationView(BaseModel):
    """An application: its state, each child's progress and result, the decision."""

    application_id: str = Field(description="The application.", examples=["app-2026-0001"])
    run_status: str = Field(
        description="The workflow run's status (RUNNING, COMPLETED, ...).", examples=["RUNNING"]
    )
    status: CreditApplicationStatus | None = Field(
        description="State, each child's progress and result, the decision; null until the "
        "run first answers."
    )


class ReviewBody(BaseModel):
    """Body of `POST …/review`: the reviewer is the caller's identity, never the body's word."""

    model_config = ConfigDict(extra="forbid")

    decision: ReviewDecision = Field(description="The reviewer's decision.")
    # Accepted for older clients; it must name the caller (403 otherwise).
    reviewer_id: str | None = Field(
        default=None,
        pattern=PERSON_ID,
        description="Deprecated: if given, must be the caller's own staff ID (else 403).",
    )
    note: str = Field(
        default="", max_length=2000, description="Why.", examples=["income verified by phone"]
    )
    approved_amount: Decimal | None = Field(
        default=None,
        gt=0,
        le=MAX_AMOUNT,
        decimal_places=2,
        description="Approve less than requested (approve only).",
        examples=["4000.00"],
    )


class UpdateAccepted(BaseModel):
    """A review or documents taken by the application."""

    application_id: str = Field(description="The application.", examples=["app-2026-0001"])
    state: ApplicationState = Field(description="The application's state after taking it.")


@router.post(
    "",
    status_code=202,
    response_model=ApplicationAccepted,
    dependencies=[require("channel")],
    operation_id="credit_applications_create",
    summary="Submit a credit application",
    responses=errors(*JSON_BODY, 409, *UPSTREAM),
)
async def post_application(
    req: CreditApplicationRequest, state: ApiState = Depends(api_state)
) -> ApplicationAccepted:
    """Submit an application; the same `application_id` always means the same application."""
    await _check_against_rules(state, req)
    await _check_customer(state, req.customer_id)
    client = await state.client()
    await _same_application(client, req)
    await start_application(client, state.settings, req, datetime.now(UTC))
    return ApplicationAccepted(
        application_id=req.application_id,
        status_url=f"/v1/credit-applications/{req.application_id}",
    )


@router.get(
    "/{application_id}",
    response_model=ApplicationView,
    operation_id="credit_applications_get",
    summary="Read a credit application",
    responses=errors(404, *PARAMS, *UPSTREAM),
)
async def get_application(
    application_id: str = APPLICATION_ID,
    state: ApiState = Depends(api_state),
    identity: Identity = require("channel", "reviewer", "admin"),
) -> ApplicationView:
    """Status, each child's status and result so far, the decision and its reasons."""
    scope = customer_scope(identity)
    view = await application_view(await state.client(), application_id)
    not_found = _not_found(application_id)
    if view.lookup is Lookup.NOT_FOUND:
        raise not_found
    ensure_owner(scope, view.status.customer_id if view.status else None, not_found)
    return ApplicationView(
        application_id=application_id, run_status=view.run_status, status=view.status
    )


@router.post(
    "/{application_id}/review",
    response_model=UpdateAccepted,
    operation_id="credit_applications_review",
    summary="Review a referred application",
    responses=errors(*JSON_BODY, 404, 409, *UPSTREAM),
)
async def post_review(
    body: ReviewBody,
    application_id: str = APPLICATION_ID,
    idempotency_key: str | None = Header(default=None, pattern=SAFE_ID),
    state: ApiState = Depends(api_state),
    identity: Identity = require("reviewer", person=True),
) -> UpdateAccepted:
    """A manager's decision on a referred application (409 unless it awaits one)."""
    assert identity.person is not None
    if body.reviewer_id is not None and body.reviewer_id != identity.person:
        raise ApiError(
            403, "reviewer_mismatch", "reviewer_id must be the caller's own staff ID, or absent"
        )
    review = ReviewRequest(
        decision=body.decision,
        reviewer_id=identity.person,
        note=body.note,
        approved_amount=body.approved_amount,
    )
    client = await state.client()
    await _expect_state(state, application_id, ApplicationState.AWAITING_REVIEW, "a review")
    try:
        status = await submit_review(client, application_id, review, idempotency_key)
    except Rejected as exc:
        raise _rejection(exc) from None
    return UpdateAccepted(application_id=application_id, state=status.state)


@router.post(
    "/{application_id}/documents",
    response_model=UpdateAccepted,
    operation_id="credit_applications_documents",
    summary="Provide requested documents",
    responses=errors(*JSON_BODY, 404, 409, *UPSTREAM),
)
async def post_documents(
    docs: DocumentsRequest,
    application_id: str = APPLICATION_ID,
    state: ApiState = Depends(api_state),
    identity: Identity = require("channel"),
) -> UpdateAccepted:
    """Documents the applicant provides after a request for information (their session)."""
    client = await state.client()
    await _expect_state(
        state,
        application_id,
        ApplicationState.AWAITING_DOCUMENTS,
        "documents",
        scope=customer_scope(identity),
    )
    try:
        status = await submit_documents(client, application_id, docs)
    except Rejected as exc:
        raise _rejection(exc) from None
    return UpdateAccepted(application_id=application_id, state=status.state)


def _not_found(application_id: str) -> ApiError:
    return ApiError(404, "application_not_found", f"no credit application {application_id}")


async def _expect_state(
    state: ApiState,
    application_id: str,
    expected: ApplicationState,
    what: str,
    scope: str | None = None,
) -> None:
    """404 for an unknown application (or another customer's), 409 when not waiting for this."""
    view = await application_view(await state.client(), application_id)
    if view.lookup is Lookup.NOT_FOUND:
        raise _not_found(application_id)
    ensure_owner(
        scope, view.status.customer_id if view.status else None, _not_found(application_id)
    )
    current = view.status.state.value if view.status else view.run_status
    # Decided counts as finished even while the run still writes its report.
    decided = view.status is not None and view.status.state in FINISHED_STATES
    if view.lookup is Lookup.FINISHED or decided:
        raise ApiError(
            409,
            "application_finished",
            f"application {application_id} is already {current}; it takes no more {what}",
        )
    if view.status is not None and view.status.state is not expected:
        raise ApiError(
            409,
            "wrong_state",
            f"application {application_id} is {current}, not waiting for {what}",
        )


async def _same_application(client: Client, req: CreditApplicationRequest) -> None:
    """409 when the application_id is already taken by a different application."""
    existing = (await application_view(client, req.application_id)).status
    if existing is None:
        return
    differs = [
        name
        for name, theirs, ours in (
            ("customer_id", existing.customer_id, req.customer_id),
            ("product", existing.product, req.product),
            ("requested_amount", existing.requested_amount, req.requested_amount),
        )
        if theirs != ours
    ]
    if differs:
        raise ApiError(
            409,
            "application_id_conflict",
            f"application {req.application_id} exists with a different {', '.join(differs)}; "
            "a new application needs a new application_id",
        )


def _rejection(exc: Rejected) -> ApiError:
    if exc.code == "amount_too_high":
        return ApiError(422, "amount_too_high", exc.message)
    return ApiError(409, "wrong_state", exc.message)


async def _check_against_rules(state: ApiState, req: CreditApplicationRequest) -> None:
    try:
        rules = await asyncio.to_thread(state.rules.credit_rules)
    except RuleSetError as exc:
        # Without valid rules nothing can be decided: refuse now rather than strand it.
        log.error("credit rules unreadable: %s", exc)
        raise ApiError(503, "rules_unavailable", "credit rules are being updated; retry") from None
    product = rules.products.get(req.product)
    if product is None:
        raise ApiError(422, "unknown_product", f"product {req.product.value!r} is not offered")
    problems = request_problems(product, req)
    if problems:
        code, _ = problems[0]
        raise ApiError(
            422,
            code.value,
            "; ".join(message for _, message in problems),
            details=[{"code": c.value, "problem": m} for c, m in problems],
        )


async def _check_customer(state: ApiState, customer_id: str) -> None:
    assert state.crm is not None
    await crm_read(
        state.crm.get_customer(customer_id),
        missing=unknown_customer(customer_id),
        strict=False,
        what="customer check",
    )
