"""Listing business workflows for staff: Temporal visibility on fiflow's search attributes.

Visibility holds what the search attributes say (no PII, by design); anything finer, such as
an application's exact state or its review SLA, is read by the `status` query of each listed
run, so a page (at most MAX_LIMIT items) costs at most one query per item.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Generic, TypeVar

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from fiflow.domain import search_attributes as sa
from fiflow.domain.alerts import AlertState
from fiflow.domain.credit import (
    ApplicationState,
    CreditApplicationStatus,
    Decision,
)
from fiflow.domain.credit_rules import ReviewRules
from fiflow.domain.keys import alert_workflow_id, notice_workflow_id
from fiflow.domain.notices import NoticeStatus
from fiflow.integrations.alert_starts import FRAUD_ALERT_WORKFLOW, NOTICE_WORKFLOW

DEFAULT_LIMIT = 20
MAX_LIMIT = 50
# The review inbox is sorted oldest first, which SQL visibility cannot order by: the matching
# runs are read (newest first, as the server lists them) and sorted here, up to this many.
MAX_SCAN = 5000
QUERY_CONCURRENCY = 8

CREDIT_WORKFLOW = "CreditApplicationWorkflow"


class AlertKind(StrEnum):
    """What the alert list holds: fraud alerts (a reply awaited) and informational notices."""

    FRAUD_ALERT = "fraud_alert"
    NOTICE = "notice"


# Each kind's workflow type, and the prefix its workflow IDs put before the alert ID.
ALERT_WORKFLOWS = {AlertKind.FRAUD_ALERT: FRAUD_ALERT_WORKFLOW, AlertKind.NOTICE: NOTICE_WORKFLOW}
_ID_PREFIX = {
    AlertKind.FRAUD_ALERT: alert_workflow_id(""),
    AlertKind.NOTICE: notice_workflow_id(""),
}
_KIND_OF_WORKFLOW = {workflow: kind for kind, workflow in ALERT_WORKFLOWS.items()}


# A state the alert list filters by: both kinds keep theirs in the AlertState search attribute,
# fraud alerts an AlertState and notices a NoticeStatus. Built from the two, so a state added to
# either is listed at once (mypy cannot see the members of an enum built this way).
ListedState = StrEnum(  # type: ignore[misc]
    "ListedState", {s.name: s.value for s in (*AlertState, *NoticeStatus)}
)


INBOX_STATES = (ApplicationState.AWAITING_REVIEW, ApplicationState.AWAITING_DOCUMENTS)

# Which Decision search attribute (and run status) each application state can hide behind.
_DECISION_OF_STATE = {
    ApplicationState.SUBMITTED: Decision.PENDING,
    ApplicationState.CHECKING: Decision.PENDING,
    ApplicationState.OPENING_ACCOUNT: Decision.PENDING,
    ApplicationState.AWAITING_REVIEW: Decision.REFERRED,
    ApplicationState.AWAITING_DOCUMENTS: Decision.REFERRED,
    ApplicationState.APPROVED: Decision.APPROVED,
    ApplicationState.DECLINED: Decision.DECLINED,
    ApplicationState.FAILED: Decision.FAILED,
}
# States a run only holds while it runs: listing them needs the live `status` query.
_LIVE_STATES = frozenset(
    {
        ApplicationState.SUBMITTED,
        ApplicationState.CHECKING,
        ApplicationState.OPENING_ACCOUNT,
        ApplicationState.AWAITING_REVIEW,
        ApplicationState.AWAITING_DOCUMENTS,
    }
)


class InvalidPageToken(ValueError):
    """A page token this listing did not hand out."""


@dataclass(frozen=True)
class ApplicationItem:
    """One application of a list page."""

    application_id: str
    state: str
    product: str | None
    submitted_at: datetime
    review_due_at: datetime | None
    run_status: str


@dataclass(frozen=True)
class AlertItem:
    """One alert of a list page."""

    alert_id: str
    kind: str
    alert_type: str | None
    state: str | None
    channel: str | None
    started_at: datetime
    run_status: str


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page and the token for the next (None on the last)."""

    items: list[T]
    next_page_token: str | None


def _quote(value: str) -> str:
    # Values come from enums or validated IDs; escaping keeps any other text inert anyway.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _run_status(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status else "unknown"


def _sa_value(execution: WorkflowExecution, key: object) -> str | None:
    value = execution.typed_search_attributes.get(key)  # type: ignore[call-overload]
    return value if isinstance(value, str) else None


# --- credit applications ----------------------------------------------------------------------


def credit_query(states: Iterable[ApplicationState]) -> str:
    """The visibility query narrowing to the runs that can be in one of `states`."""
    clauses = []
    for state in sorted(set(states)):
        decision = _DECISION_OF_STATE[state].value
        if state in _LIVE_STATES:
            clauses.append(f"(Decision = {_quote(decision)} AND ExecutionStatus = 'Running')")
        else:
            clauses.append(f"Decision = {_quote(decision)}")
    where = " OR ".join(sorted(set(clauses)))
    return f"WorkflowType = {_quote(CREDIT_WORKFLOW)} AND ({where})"


def _encode(payload: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, sort_keys=True).encode()).decode()


def _decode(token: str, kind: str) -> dict[str, str]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidPageToken("the page token is not one this listing handed out") from None
    if not isinstance(payload, dict) or payload.get("k") != kind:
        raise InvalidPageToken("the page token is not one this listing handed out")
    return payload


ReviewRulesFor = Callable[[str | None], Awaitable[ReviewRules | None]]


def review_due_at(status: CreditApplicationStatus, rules: ReviewRules | None) -> datetime | None:
    """When the current wait (review or documents) ends by the SLA of the run's rule version.

    Mirrors the workflow's clock: the review deadline runs from the referral (or from the last
    documents received), plus the escalation grace once escalated; documents are due
    `documents_deadline` after the review that asked for them.
    """
    if rules is None:
        return None
    if status.state is ApplicationState.AWAITING_DOCUMENTS:
        if not status.reviews:
            return None
        return status.reviews[-1].at + rules.documents_deadline
    if status.state is not ApplicationState.AWAITING_REVIEW:
        return None
    started = status.documents[-1].at if status.documents else status.timings.get("referred")
    if started is None:
        return None
    cycle = status.path
    if "documents received" in cycle:
        cycle = cycle[len(cycle) - cycle[::-1].index("documents received") :]
    due = started + rules.deadline
    if "review escalated" in cycle:
        due += rules.escalation_grace
    return due


async def _query_status(client: Client, workflow_id: str) -> CreditApplicationStatus | None:
    handle = client.get_workflow_handle(workflow_id)
    try:
        status: CreditApplicationStatus = await handle.query(
            "status", result_type=CreditApplicationStatus
        )
    except RPCError as err:
        # Finished or gone between listing and query: it no longer belongs on a live list.
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            return None
        raise
    except Exception:  # noqa: BLE001 - a query the run rejects (e.g. its worker is gone)
        return None
    return status


async def list_applications(
    client: Client,
    states: Iterable[ApplicationState] = INBOX_STATES,
    *,
    limit: int = DEFAULT_LIMIT,
    page_token: str | None = None,
    review_rules_for: ReviewRulesFor | None = None,
) -> Page[ApplicationItem]:
    """Applications in one of `states`, oldest submission first, with their review SLA."""
    wanted = set(states) or set(INBOX_STATES)
    limit = max(1, min(limit, MAX_LIMIT))
    after: tuple[str, str] | None = None
    if page_token is not None:
        payload = _decode(page_token, "credit")
        after = (payload.get("t", ""), payload.get("w", ""))
    query = credit_query(wanted)
    if after is not None:
        query += f" AND StartTime >= {_quote(after[0])}"
    runs: list[WorkflowExecution] = [
        run async for run in client.list_workflows(query, limit=MAX_SCAN, page_size=1000)
    ]
    runs.sort(key=lambda r: (_iso(r.start_time), r.id))
    if after is not None:
        runs = [r for r in runs if (_iso(r.start_time), r.id) > after]
    items: list[ApplicationItem] = []
    gate = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def item_of(run: WorkflowExecution) -> ApplicationItem | None:
        decision = _sa_value(run, sa.DECISION)
        product = _sa_value(run, sa.PRODUCT)
        application_id = _sa_value(run, sa.APPLICATION_ID) or run.id.removeprefix("credit-")
        run_status = _run_status(run.status)
        if run.status is not WorkflowExecutionStatus.RUNNING or not (wanted & _LIVE_STATES):
            state = {d.value: s for s, d in _DECISION_OF_STATE.items() if s not in _LIVE_STATES}
            found = state.get(decision or "")
            if found is None or found not in wanted:
                return None
            return ApplicationItem(
                application_id, found.value, product, run.start_time, None, run_status
            )
        async with gate:
            status = await _query_status(client, run.id)
        if status is None or status.state not in wanted:
            return None
        rules = await review_rules_for(status.rule_set_version) if review_rules_for else None
        return ApplicationItem(
            application_id=application_id,
            state=status.state.value,
            product=product or status.product.value,
            submitted_at=status.timings.get("received", run.start_time),
            review_due_at=review_due_at(status, rules),
            run_status=run_status,
        )

    # Read in slices of one page: states can change between listing and query, so a slice
    # may yield fewer than it holds; stop once the page is full.
    position = 0
    last: WorkflowExecution | None = None
    while position < len(runs) and len(items) < limit:
        chunk = runs[position : position + limit]
        found = await asyncio.gather(*(item_of(r) for r in chunk))
        for run, item in zip(chunk, found, strict=True):
            position += 1
            last = run
            if item is not None:
                items.append(item)
                if len(items) == limit:
                    break
    more = position < len(runs)
    token = (
        _encode({"k": "credit", "t": _iso(last.start_time), "w": last.id})
        if more and last is not None
        else None
    )
    return Page(items, token)


# --- alerts -----------------------------------------------------------------------------------


def alert_query(
    *,
    kind: AlertKind | None = None,
    state: str | None = None,
    alert_type: str | None = None,
    channel: str | None = None,
    started_from: datetime | None = None,
    started_to: datetime | None = None,
) -> str:
    """The visibility query for alerts and notices matching these filters.

    `state` is a ListedState value (ValueError otherwise).
    """
    kinds = [kind] if kind is not None else list(AlertKind)
    types = ", ".join(_quote(ALERT_WORKFLOWS[k]) for k in kinds)
    parts = [f"WorkflowType IN ({types})"]
    if state is not None:
        parts.append(f"AlertState = {_quote(ListedState(state).value)}")
    if alert_type is not None:
        parts.append(f"AlertType = {_quote(alert_type)}")
    if channel is not None:
        parts.append(f"Channel = {_quote(channel)}")
    if started_from is not None:
        parts.append(f"StartTime >= {_quote(_iso(started_from))}")
    if started_to is not None:
        parts.append(f"StartTime < {_quote(_iso(started_to))}")
    return " AND ".join(parts)


async def list_alerts(
    client: Client,
    *,
    kind: AlertKind | None = None,
    state: str | None = None,
    alert_type: str | None = None,
    channel: str | None = None,
    started_from: datetime | None = None,
    started_to: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    page_token: str | None = None,
) -> Page[AlertItem]:
    """Alerts and notices matching the filters, newest first, from the search attributes alone.

    ValueError for a `state` neither kind has.
    """
    limit = max(1, min(limit, MAX_LIMIT))
    raw_token: bytes | None = None
    if page_token is not None:
        payload = _decode(page_token, "alerts")
        try:
            raw_token = base64.urlsafe_b64decode(payload.get("p", "").encode())
        except (binascii.Error, ValueError):
            raise InvalidPageToken("the page token is not one this listing handed out") from None
    query = alert_query(
        kind=kind,
        state=state,
        alert_type=alert_type,
        channel=channel,
        started_from=started_from,
        started_to=started_to,
    )
    iterator = client.list_workflows(query, page_size=limit, next_page_token=raw_token)
    try:
        await iterator.fetch_next_page()
    except RPCError as err:
        if err.status is RPCStatusCode.INVALID_ARGUMENT and raw_token is not None:
            raise InvalidPageToken("the page token has expired or is not valid") from None
        raise
    items = [_alert_item(run) for run in iterator.current_page or []]
    nxt = iterator.next_page_token
    token = _encode({"k": "alerts", "p": base64.urlsafe_b64encode(nxt).decode()}) if nxt else None
    return Page(items, token)


def _alert_item(run: WorkflowExecution) -> AlertItem:
    # The query names only the two workflow types, so every run listed has a kind.
    kind = _KIND_OF_WORKFLOW[run.workflow_type]
    return AlertItem(
        alert_id=_sa_value(run, sa.ALERT_ID) or run.id.removeprefix(_ID_PREFIX[kind]),
        kind=kind.value,
        alert_type=_sa_value(run, sa.ALERT_TYPE),
        state=_sa_value(run, sa.ALERT_STATE),
        channel=_sa_value(run, sa.CHANNEL),
        started_at=run.start_time,
        run_status=_run_status(run.status),
    )


def sla_left(due: datetime | None, now: datetime) -> timedelta | None:
    """Time left before `due` (negative once past)."""
    return None if due is None else due - now
