"""`GET /v1/credit-applications` and `GET /v1/alerts`: staff lists from Temporal visibility."""

from __future__ import annotations

import asyncio
from datetime import datetime

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, Field

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.credit import ApplicationState
from fiflow.domain.credit_rules import CreditRuleSet, ReviewRules, parse_credit_rule_set
from fiflow.domain.customers import Channel
from fiflow.domain.rules import RuleSetError
from fiflow.integrations.settings import STAFF_ROLES
from fiflow.starters.api.auth import require
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.openapi import KEYED, PARAMS, UPSTREAM, errors
from fiflow.starters.api.state import ApiState, api_state
from fiflow.starters.workflow_lists import (
    DEFAULT_LIMIT,
    INBOX_STATES,
    MAX_LIMIT,
    AlertKind,
    InvalidPageToken,
    ListedState,
    ReviewRulesFor,
    list_alerts,
    list_applications,
)

# Temporal's visibility store refuses instants outside these years (with an error, not none).
SEARCHABLE_YEARS = (1970, 9999)
router = APIRouter(dependencies=[require(*STAFF_ROLES)], responses=errors(*KEYED))
PAGE_TOKEN = Query(
    default=None, max_length=2048, description="`next_page_token` of the page before."
)
LIMIT = Query(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page.")


class ApplicationListItem(BaseModel):
    """One application of the list."""

    application_id: str = Field(examples=["app-2026-0001"])
    state: ApplicationState = Field(description="Where the application is.")
    product: str | None = Field(description="The credit product.", examples=["credit_card"])
    submitted_at: datetime = Field(description="When fiflow received it.")
    review_due_at: datetime | None = Field(
        description="When the current wait ends by the review SLA of the application's rule "
        "version: the review deadline (awaiting_review, including an escalation's grace) or "
        "the documents deadline (awaiting_documents); null otherwise."
    )
    run_status: str = Field(description="The workflow run's status.", examples=["running"])


class ApplicationList(BaseModel):
    """One page, oldest submission first."""

    items: list[ApplicationListItem]
    next_page_token: str | None = Field(description="Pass as `page_token`; null on the last page.")


class AlertListItem(BaseModel):
    """One alert or notice of the list (from its search attributes: no personal data)."""

    alert_id: str = Field(examples=["al-7f3a9c2e"])
    kind: AlertKind = Field(
        description="`fraud_alert` (a FraudAlertWorkflow, which awaits the customer's reply) "
        "or `notice` (an InformationalAlertWorkflow: one message, no reply)."
    )
    alert_type: str | None = Field(examples=["card_fraud_suspected"])
    state: str | None = Field(
        description="The AlertState search attribute: an alert state, or a notice's status."
    )
    channel: str | None = Field(description="The channel the customer was reached on, if any.")
    started_at: datetime = Field(description="When the alert's run started.")
    run_status: str = Field(description="The workflow run's status.", examples=["running"])


class AlertList(BaseModel):
    """One page, newest first."""

    items: list[AlertListItem]
    next_page_token: str | None = Field(description="Pass as `page_token`; null on the last page.")


def review_rules_lookup(state: ApiState) -> ReviewRulesFor:
    """The review SLA of a credit rule version (activated, the file's, else the active one)."""
    found: dict[str | None, ReviewRules | None] = {}

    def read(version: str | None) -> ReviewRules | None:
        rules: CreditRuleSet | None = None
        try:
            active = state.rules.credit_rules()
            if active.version == version or version is None:
                rules = active
            else:
                for stored in state.rule_versions.versions("credit"):
                    if stored.version == version:
                        rules = parse_credit_rule_set(stored.content, source="stored credit rules")
                        break
                if rules is None:
                    from_file = state.rules.from_file("credit")
                    rules = from_file if from_file.version == version else active
        except (RuleSetError, ValueError):
            rules = None
        return rules.review if rules is not None else None

    async def lookup(version: str | None) -> ReviewRules | None:
        # The rule store reads files and the database: off the event loop, once per version.
        if version not in found:
            found[version] = await asyncio.to_thread(read, version)
        return found[version]

    return lookup


@router.get(
    "/v1/credit-applications",
    response_model=ApplicationList,
    tags=["credit applications"],
    operation_id="credit_applications_list",
    summary="List credit applications (the review inbox)",
    responses=errors(400, *PARAMS, *UPSTREAM),
)
async def get_applications(
    state_: list[ApplicationState] = Query(
        default=list(INBOX_STATES),
        alias="state",
        description="One or more states (repeat the parameter); by default the review inbox: "
        "awaiting_review and awaiting_documents.",
    ),
    limit: int = LIMIT,
    page_token: str | None = PAGE_TOKEN,
    state: ApiState = Depends(api_state),
) -> ApplicationList:
    """Applications in the given states, oldest first, with the review SLA's due time."""
    try:
        page = await list_applications(
            await state.client(),
            state_,
            limit=limit,
            page_token=page_token,
            review_rules_for=review_rules_lookup(state),
        )
    except InvalidPageToken as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from None
    return ApplicationList(
        items=[
            ApplicationListItem(
                application_id=i.application_id,
                state=ApplicationState(i.state),
                product=i.product,
                submitted_at=i.submitted_at,
                review_due_at=i.review_due_at,
                run_status=i.run_status,
            )
            for i in page.items
        ],
        next_page_token=page.next_page_token,
    )


@router.get(
    "/v1/alerts",
    response_model=AlertList,
    tags=["alerts"],
    operation_id="alerts_list",
    summary="Search alerts and notices",
    responses=errors(400, *PARAMS, *UPSTREAM),
)
async def get_alerts(
    kind: AlertKind | None = Query(default=None, description="Only fraud alerts, or only notices."),
    state_: ListedState | None = Query(
        default=None, alias="state", description="An alert's state, or a notice's status."
    ),
    type_: str | None = Query(
        default=None, alias="type", pattern=SAFE_ID, description="Alert type."
    ),
    channel: Channel | None = Query(default=None, description="Channel reached."),
    from_: AwareDatetime | None = Query(
        default=None, alias="from", description="Started at or after (ISO 8601, with offset)."
    ),
    to: AwareDatetime | None = Query(default=None, description="Started before."),
    limit: int = LIMIT,
    page_token: str | None = PAGE_TOKEN,
    state: ApiState = Depends(api_state),
) -> AlertList:
    """Fraud alerts and informational notices matching the filters, newest first (their
    search attributes only)."""
    if from_ is not None and to is not None and from_ >= to:
        raise ApiError(422, "invalid_range", "`from` must be before `to`")
    for name, moment in (("from", from_), ("to", to)):
        if moment is not None and not SEARCHABLE_YEARS[0] <= moment.year <= SEARCHABLE_YEARS[1]:
            raise ApiError(
                422,
                "invalid_range",
                f"`{name}` must lie between the years {SEARCHABLE_YEARS[0]} and "
                f"{SEARCHABLE_YEARS[1]}",
            )
    try:
        page = await list_alerts(
            await state.client(),
            kind=kind,
            state=state_,
            alert_type=type_,
            channel=channel.value if channel else None,
            started_from=from_,
            started_to=to,
            limit=limit,
            page_token=page_token,
        )
    except InvalidPageToken as exc:
        raise ApiError(400, "invalid_cursor", str(exc)) from None
    return AlertList(
        items=[AlertListItem(**vars(i)) for i in page.items], next_page_token=page.next_page_token
    )
