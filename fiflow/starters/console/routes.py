"""The staff console under `/console`: server-rendered pages over the API's own client helpers.

Pages call what the API endpoints call (workflow_lists, credit_client, alerts_client, the
report and rule stores) or the endpoint functions themselves where the API holds the logic
(a review, an activation), so the console can never do what the API would refuse.
Templates only render what a route hands them.
"""

from __future__ import annotations

import asyncio
import difflib
import hmac
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import yaml
from fastapi import APIRouter, FastAPI, Form, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.credit import ApplicationState, Decision, Product, ReviewDecision
from fiflow.domain.keys import (
    alert_workflow_id,
    credit_workflow_id,
    keyed_hash,
    notice_workflow_id,
)
from fiflow.domain.metrics import PeriodKind
from fiflow.domain.notices import NoticeResult
from fiflow.domain.results_reports import ReportKind
from fiflow.domain.rules import RuleSetError
from fiflow.integrations.alert_starts import NOTICE_WORKFLOW
from fiflow.integrations.codec import KeyRingError
from fiflow.integrations.reports import InvalidCursor
from fiflow.integrations.rules_store import RULE_FILES
from fiflow.integrations.settings import STAFF_ROLES
from fiflow.starters.alerts_client import alert_view
from fiflow.starters.api import admin, credit, metrics
from fiflow.starters.api.auth import Identity, _oidc_identity, role_of, staff_of
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.lists import review_rules_lookup
from fiflow.starters.api.rate_limits import retry_after_seconds
from fiflow.starters.api.state import ApiState
from fiflow.starters.console import charts, dry_run, session
from fiflow.starters.credit_client import application_view
from fiflow.starters.workflow_lists import (
    INBOX_STATES,
    AlertItem,
    AlertKind,
    InvalidPageToken,
    ListedState,
    Page,
    list_alerts,
    list_applications,
    review_due_at,
)
from fiflow.starters.workflow_views import Lookup, workflow_view

log = logging.getLogger("fiflow.console")
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix="/console", include_in_schema=False)
# The date filters of the search pages (YYYY-MM-DD or an ISO datetime).
FROM = Query(default="", alias="from", max_length=32)
TO = Query(default="", max_length=32)


class SignIn(Exception):
    """No valid console session: go to the login page."""


class Refused(Exception):
    """A signed-in caller whose role may not see this page."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _state(request: Request) -> ApiState:
    state: ApiState = request.app.state.fiflow
    return state


def _secret(state: ApiState) -> str:
    return state.settings.console_session_key.get_secret_value()


def _current(request: Request, *roles: str) -> session.ConsoleSession:
    """The signed-in staff member (SignIn without one, Refused for the wrong role)."""
    state = _state(request)
    cookie = request.cookies.get(session.COOKIE)
    if not cookie:
        raise SignIn()
    try:
        current = session.verify(_secret(state), cookie)
    except session.BadSession:
        raise SignIn() from None
    if current.key_sha256 is not None:
        # A key taken out of the configuration ends its console sessions too.
        live = {session.key_digest(k) for k in (*state.api_keys, *state.staff_keys)}
        if current.key_sha256 not in live:
            raise SignIn()
    if not current.roles & set(roles or STAFF_ROLES):
        raise Refused(f"this page needs the {' or '.join(roles)} role")
    return current


def _identity(current: session.ConsoleSession) -> Identity:
    return Identity(current.roles, person=current.person)


def _render(
    request: Request,
    name: str,
    current: session.ConsoleSession | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    state = _state(request)
    context.update(
        me=current,
        csrf=session.csrf_token(_secret(state), current.sid) if current else "",
        now=datetime.now(UTC),
    )
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def _check_csrf(request: Request, current: session.ConsoleSession, token: str | None) -> None:
    if not session.csrf_ok(_secret(_state(request)), current.sid, token):
        raise Refused("the form has expired or did not come from this console; reload the page")


async def _search_page(
    request: Request,
    name: str,
    filters: dict[str, str],
    search: Callable[[], Awaitable[Any]],
    bad_filter: tuple[type[Exception], ...],
    verb: str,
    roles: tuple[str, ...] = (),
    **context: Any,
) -> HTMLResponse:
    """A list page with filters: a page of results, or what is wrong with the filter (no 500).

    `roles`: who may see it (any staff role by default).
    """
    current = _current(request, *roles)  # before `search` reads a filter: sign-in comes first
    page: Any = None
    problem: str | None = None
    try:
        page = await search()
    except bad_filter as exc:
        problem = f"Cannot {verb} with that filter ({exc})."
    return _render(
        request,
        name,
        current,
        page=page,
        problem=problem,
        filters=filters,
        query=urlencode({k: v for k, v in filters.items() if v}),
        **context,
    )


def _back(url: str, message: str | None = None) -> RedirectResponse:
    if message:
        url += ("&" if "?" in url else "?") + urlencode({"msg": message})
    return RedirectResponse(url, status_code=303)


# --- sign-in ----------------------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request) -> HTMLResponse:
    """The sign-in form."""
    nonce = session.new_nonce()
    response = _render(request, "login.html", None, nonce=nonce, error=None)
    response.set_cookie(
        session.LOGIN_COOKIE,
        nonce,
        max_age=900,
        path=session.PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    credential: str = Form(..., max_length=4096),
    nonce: str = Form(..., max_length=64),
) -> Response:
    """Trade a staff key (or OIDC token) for a session cookie; other keys get 403.

    Refused attempts count per client address and per credential: past the throttle's limit
    the page answers 429 with Retry-After, whatever the credential.
    """
    state = _state(request)
    credential = credential.strip()
    throttle: session.LoginThrottle = request.app.state.console_logins
    address = request.client.host if request.client else "unknown"
    # A keyed hash stands for the address in logs: repeated failures from one source stay
    # visible to ops without the log holding an IP address (personal data).
    source = keyed_hash(state.settings.address_hash_key.get_secret_value(), address, length=12)
    subjects = (f"address:{address}", f"credential:{credential}")
    wait = throttle.wait(*subjects)
    if wait > 0:
        seconds = retry_after_seconds(wait)
        log.warning("console sign-in throttled: source %s, retry after %d s", source, seconds)
        page = _render(request, "login.html", None, 429, nonce=nonce, error=(
            f"Too many failed sign-ins; try again in {seconds} s."))  # fmt: skip
        page.headers["Retry-After"] = str(seconds)
        return page
    expected = request.cookies.get(session.LOGIN_COOKIE)
    if not expected or not hmac.compare_digest(expected.encode(), nonce.encode()):
        return _render(request, "login.html", None, 400, nonce=session.new_nonce(), error=(
            "The sign-in form expired; try again."))  # fmt: skip

    def refuse(status: int, reason: str, template: str = "login.html", **context: Any) -> Response:
        throttle.failed(*subjects)
        # Never the credential: only why, and where from (hashed).
        log.warning("console sign-in refused (%s): source %s", reason, source)
        return _render(request, template, None, status, **context)

    roles: frozenset[str] = frozenset()
    person: str | None = None
    digest: str | None = session.key_digest(credential)
    staff = staff_of(credential, state.staff_keys)
    role = role_of(credential, state.api_keys)
    if staff is not None:
        person, roles = staff[0], frozenset({staff[1]})
    elif role is not None:
        roles = frozenset({role})
    elif state.oidc is not None and credential.count(".") == 2:
        try:
            identity = await _oidc_identity(state, credential)
        except ApiError as exc:
            return refuse(exc.status, f"token: {exc.code}", nonce=nonce, error=exc.message)
        roles, person, digest = identity.roles, identity.person, None
    if not roles:
        return refuse(401, "unknown key", nonce=nonce, error="Unknown key.")
    if not roles & set(STAFF_ROLES):
        return refuse(403, "not a staff role", "refused.html", message=(
            "The console is for staff: this key's role may not sign in."))  # fmt: skip
    throttle.forget(subjects[1])
    cookie, _ = session.issue(
        _secret(state),
        roles=roles,
        person=person,
        ttl_s=state.settings.console_session_hours * 3600,
        key_sha256=digest,
    )
    response = RedirectResponse("/console/inbox", status_code=303)
    response.set_cookie(
        session.COOKIE,
        cookie,
        max_age=int(state.settings.console_session_hours * 3600),
        path=session.PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(session.LOGIN_COOKIE, path=session.PATH)
    log.info("console sign-in: %s (%s)", person or "shared key", ",".join(sorted(roles)))
    return response


@router.post("/logout")
async def logout(request: Request, csrf: str | None = Form(default=None)) -> Response:
    """End the session."""
    current = _current(request)
    _check_csrf(request, current, csrf)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(session.COOKIE, path=session.PATH)
    return response


@router.get("")
@router.get("/")
async def home(request: Request) -> Response:
    """The review inbox is home."""
    _current(request)
    return RedirectResponse("/console/inbox", status_code=303)


# --- review inbox -----------------------------------------------------------------------------


@router.get("/inbox")
async def inbox(
    request: Request,
    state_: list[ApplicationState] = Query(default=list(INBOX_STATES), alias="state"),
    page_token: str | None = Query(default=None, max_length=2048),
    fragment: bool = False,
    msg: str | None = Query(default=None, max_length=300),
) -> HTMLResponse:
    """Applications waiting for a review or documents, oldest first, with SLA time left."""
    current = _current(request)
    state = _state(request)
    try:
        page = await list_applications(
            await state.client(),
            state_,
            limit=50,
            page_token=page_token,
            review_rules_for=review_rules_lookup(state),
        )
    except InvalidPageToken:
        return _back("/console/inbox", "That page is no longer available.")  # type: ignore[return-value]
    name = "inbox_rows.html" if fragment else "inbox.html"
    return _render(
        request,
        name,
        current,
        page=page,
        states=[s.value for s in state_],
        all_states=[s.value for s in ApplicationState],
        msg=msg,
    )


@router.get("/applications/{application_id}")
async def application(
    request: Request, application_id: str, msg: str | None = Query(default=None, max_length=300)
) -> HTMLResponse:
    """One application: credit check, history summary, fired rules, review forms."""
    current = _current(request)
    _safe(application_id)
    state = _state(request)
    view = await application_view(await state.client(), application_id)
    if view.lookup is Lookup.NOT_FOUND:
        return _render(
            request, "not_found.html", current, 404, what=f"application {application_id}"
        )
    due = None
    if view.status is not None:
        rules = await review_rules_lookup(state)(view.status.rule_set_version)
        due = review_due_at(view.status, rules)
    return _render(
        request,
        "application.html",
        current,
        app_id=application_id,
        view=view,
        status=view.status,
        due=due,
        msg=msg,
        ui_link=await _ui_link(state, credit_workflow_id(application_id)),
        can_review=current.person is not None and "reviewer" in current.roles,
    )


@router.post("/applications/{application_id}/review")
async def review(
    request: Request,
    application_id: str,
    decision: ReviewDecision = Form(...),
    note: str = Form(default="", max_length=2000),
    approved_amount: str = Form(default="", max_length=20),
    csrf: str | None = Form(default=None),
) -> Response:
    """Approve (optionally for less), decline or ask for information, as the API does it."""
    current = _current(request, "reviewer")
    _check_csrf(request, current, csrf)
    _safe(application_id)
    here = f"/console/applications/{quote(application_id)}"
    amount: Decimal | None = None
    if approved_amount.strip():
        try:
            amount = Decimal(approved_amount.strip())
        except InvalidOperation:
            return _back(here, "The approved amount is not a number.")
    try:
        body = credit.ReviewBody(decision=decision, note=note, approved_amount=amount)
    except ValidationError as exc:
        problems = "; ".join(str(e.get("msg", "")) for e in exc.errors())
        return _back(here, f"Not sent: {problems}")
    state = _state(request)
    try:
        # The API's own endpoint: the reviewer is the signed-in person; state checks and
        # the update are exactly those of POST /v1/credit-applications/{id}/review.
        result = await credit.post_review(
            body,
            application_id=application_id,
            idempotency_key=None,
            state=state,
            identity=_identity(current),
        )
    except ApiError as exc:
        return _back(here, f"Not taken: {exc.message}")
    log.info("console review: %s by %s", decision.value, current.person)
    return _back(
        "/console/inbox", f"{application_id}: {decision.value} taken ({result.state.value})."
    )


# --- alerts -----------------------------------------------------------------------------------


@router.get("/alerts")
async def alerts(
    request: Request,
    kind: str = Query(default="", max_length=16),
    state_: str = Query(default="", alias="state", max_length=32),
    type_: str = Query(default="", alias="type", max_length=64),
    channel: str = Query(default="", max_length=16),
    from_: str = FROM,
    to: str = TO,
    page_token: str | None = Query(default=None, max_length=2048),
) -> HTMLResponse:
    """Search fraud alerts and notices by kind, state, type, channel and start date."""
    state = _state(request)
    # A notice's row links to its timeline page, and also straight to its run in the Web UI
    # (one message, no reply: ops often want the history itself). Filled by `search`.
    notice_links: dict[str, str] = {}

    async def search() -> Page[AlertItem]:
        alert_kind = AlertKind(kind) if kind else None
        listed_state = ListedState(state_) if state_ else None
        if type_ and not _matches(type_):
            raise ValueError("alert type")
        started_from = _date(from_)
        started_to = _date(to, end=True)
        page = await list_alerts(
            await state.client(),
            kind=alert_kind,
            state=listed_state,
            alert_type=type_ or None,
            channel=channel or None,
            started_from=started_from,
            started_to=started_to,
            limit=50,
            page_token=page_token,
        )
        for item in page.items:
            if item.kind == AlertKind.NOTICE:
                notice_links[item.alert_id] = await _ui_link(
                    state, notice_workflow_id(item.alert_id)
                )
        return page

    return await _search_page(
        request,
        "alerts.html",
        {
            "kind": kind,
            "state": state_,
            "type": type_,
            "channel": channel,
            "from": from_,
            "to": to,
        },
        search,
        (ValueError, InvalidPageToken),
        "search",
        alert_kinds=[k.value for k in AlertKind],
        alert_states=[s.value for s in ListedState],
        notice_links=notice_links,
    )


@router.get("/alerts/{alert_id}")
async def alert(request: Request, alert_id: str) -> HTMLResponse:
    """One alert's timeline: sent, reply, decision, actions; and its run in the Web UI."""
    current = _current(request)
    _safe(alert_id)
    state = _state(request)
    view = await alert_view(await state.client(), alert_id)
    if view.lookup is Lookup.NOT_FOUND:
        return _render(request, "not_found.html", current, 404, what=f"alert {alert_id}")
    events: list[tuple[datetime, str, str]] = []
    status = view.status
    if status is not None:
        for name, at in status.timings.items():
            events.append((at, name.replace("_", " "), ""))
        if status.reply is not None:
            r = status.reply
            events.append((r.received_at, "reply", f"{r.outcome.value} by {r.channel.value}"))
        for r in status.ignored_replies:
            events.append(
                (r.received_at, "reply ignored", f"{r.outcome.value} by {r.channel.value}")
            )
        for a in status.actions:
            events.append((a.at, f"action {a.step}", f"{a.outcome} {a.detail}".strip()))
    events.sort(key=lambda e: e[0])
    # Stored once the alert is decided: linked only when there is one to open. A report
    # that cannot be unsealed here (no key ring) must not take the timeline down with it.
    try:
        report = await asyncio.to_thread(state.results_reports().get, ReportKind.ALERT, alert_id)
    except KeyRingError as exc:
        log.warning("alert %s: its results report is not readable here (%s)", alert_id, exc)
        report = None
    return _render(
        request,
        "alert.html",
        current,
        alert_id=alert_id,
        view=view,
        status=status,
        events=events,
        ui_link=await _ui_link(state, alert_workflow_id(alert_id)),
        report_link=f"/console/results/alerts/{quote(alert_id)}" if report else None,
    )


@router.get("/notices/{notice_id}")
async def notice(request: Request, notice_id: str) -> HTMLResponse:
    """One notice's timeline: what was sent on which channel, deferred, suppressed or failed."""
    current = _current(request)
    _safe(notice_id)
    state = _state(request)
    view = await workflow_view(
        await state.client(), notice_workflow_id(notice_id), NOTICE_WORKFLOW, NoticeResult
    )
    if view.lookup is Lookup.NOT_FOUND:
        return _render(request, "not_found.html", current, 404, what=f"notice {notice_id}")
    status = view.status
    # (when, order at the same instant, what, detail): one workflow task records the send,
    # its outcome and the end at the same instant, and they read best in that order.
    steps: list[tuple[datetime, int, str, str]] = []
    if status is not None:
        for name, at in status.timings.items():
            order, what, detail = _NOTICE_STEPS.get(name, (2, name.replace("_", " "), ""))
            if name == "sent" and status.channel is not None:
                detail = f"by {status.channel.value}"
            elif name == "completed":
                detail = status.status.value.replace("_", " ")
            steps.append((at, order, what, detail))
        for a in status.attempts:
            what = a.step.replace("_", " ")
            steps.append((a.at, 2, what, f"{a.outcome} {a.detail}".strip()))
    steps.sort(key=lambda e: (e[0], e[1]))
    events = [(at, what, detail) for at, _, what, detail in steps]
    return _render(
        request,
        "notice.html",
        current,
        notice_id=notice_id,
        view=view,
        status=status,
        events=events,
        ui_link=await _ui_link(state, notice_workflow_id(notice_id)),
    )


# A notice's timings by name: their order among steps at one instant (the send attempts
# are 2), what the timeline calls them, and a fixed detail.
_NOTICE_STEPS = {
    "received": (0, "received", ""),
    "send_after": (1, "quiet hours end", "the send waited until then"),
    "sent": (3, "sent", ""),
    "completed": (4, "completed", ""),
}


# --- reports ----------------------------------------------------------------------------------


@router.get("/reports")
async def reports(
    request: Request,
    decision: str = Query(default="", max_length=16),
    product: str = Query(default="", max_length=32),
    from_: str = FROM,
    to: str = TO,
    cursor: str | None = Query(default=None, max_length=512),
) -> HTMLResponse:
    """Credit-application reports with filters."""
    state = _state(request)

    async def search() -> Any:
        return await asyncio.to_thread(
            state.reports().list,
            completed_from=_date(from_),
            completed_to=_date(to, end=True),
            decision=Decision(decision).value if decision else None,
            product=Product(product).value if product else None,
            limit=50,
            cursor=cursor,
        )

    return await _search_page(
        request,
        "reports.html",
        {"decision": decision, "product": product, "from": from_, "to": to},
        search,
        (ValueError, InvalidCursor),
        "list",
        decisions=[d.value for d in Decision],
        products=[p.value for p in Product],
    )


@router.get("/reports/{application_id}")
async def report(request: Request, application_id: str) -> HTMLResponse:
    """One credit report."""
    current = _current(request)
    _safe(application_id)
    stored = await asyncio.to_thread(_state(request).reports().get, application_id)
    if stored is None:
        return _render(request, "not_found.html", current, 404, what=f"report {application_id}")
    return _render(request, "report.html", current, report=stored.report, app_id=application_id)


# --- dashboards -------------------------------------------------------------------------------


@router.get("/dashboards")
async def dashboards(
    request: Request,
    period: PeriodKind = PeriodKind.DAY,
    from_: str = Query(default="", alias="from", max_length=40),
    to: str = Query(default="", max_length=40),
) -> HTMLResponse:
    """Charts of the aggregated metrics, per day or per hour (what `/v1/metrics/summary` says)."""
    current = _current(request)
    problem = None
    try:
        found = await metrics.summary(
            period=period, from_=from_ or None, to=to or None, state=_state(request)
        )
    except ApiError as exc:
        problem = exc.message
        found = await metrics.summary(period=period, from_=None, to=None, state=_state(request))
    summary = found.model_dump(mode="json", by_alias=True)
    return _render(
        request,
        "dashboards.html",
        current,
        panels=charts.panels(summary),
        period=period.value,
        start=found.from_,
        end=found.to,
        problem=problem,
        filters={"from": from_, "to": to},
    )


# --- rules ------------------------------------------------------------------------------------


@router.get("/rules")
async def rules(request: Request) -> HTMLResponse:
    """Every rule set: active version, versions, pending activations."""
    current = _current(request, "admin")
    state = _state(request)
    infos = [await asyncio.to_thread(admin._info, state, name) for name in RULE_FILES]
    return _render(request, "rules.html", current, infos=infos)


@router.get("/rules/{name}")
async def rule_set(
    request: Request,
    name: str,
    a: str = Query(default="", max_length=64),
    b: str = Query(default="", max_length=64),
    msg: str | None = Query(default=None, max_length=500),
) -> HTMLResponse:
    """One rule set: versions, audit, a diff of two versions, the dry-run/activation form."""
    current = _current(request, "admin")
    state = _state(request)
    _rule_set_name(name)
    info = await asyncio.to_thread(admin._info, state, name)
    audit = await asyncio.to_thread(_audit, state, name)
    diff = None
    if a and b:
        left, right = await asyncio.gather(
            asyncio.to_thread(_document, state, name, a),
            asyncio.to_thread(_document, state, name, b),
        )
        if left is None or right is None:
            diff = f"No version {a if left is None else b!r} of the {name} rules."
        else:
            diff = (
                "\n".join(
                    difflib.unified_diff(
                        _yaml(left).splitlines(),
                        _yaml(right).splitlines(),
                        fromfile=f"{name} {a}",
                        tofile=f"{name} {b}",
                        lineterm="",
                    )
                )
                or "The two versions are the same."
            )
    active = await asyncio.to_thread(_document, state, name, info.active_version or "")
    return _render(
        request,
        "rule_set.html",
        current,
        info=info,
        audit=audit,
        diff=diff,
        a=a,
        b=b,
        msg=msg,
        draft=_yaml(active) if active else "",
        cases=dry_run.SAMPLE_CASES.get(name, ""),
        dry_runnable=name in dry_run.DRY_RUN_SETS,
        results=None,
        problem=None,
    )


@router.post("/rules/{name}/dry-run")
async def rules_dry_run(
    request: Request,
    name: str,
    draft: str = Form(..., max_length=500_000),
    cases: str = Form(default="", max_length=100_000),
    action: str = Form(default="dry-run", max_length=16),
    csrf: str | None = Form(default=None),
) -> Response:
    """Validate a draft, run it on sample cases beside the active version, or activate it."""
    current = _current(request, "admin")
    _check_csrf(request, current, csrf)
    _rule_set_name(name)
    state = _state(request)
    info = await asyncio.to_thread(admin._info, state, name)
    audit = await asyncio.to_thread(_audit, state, name)
    results = None
    problem = None
    try:
        parsed = dry_run.parse_draft(name, draft)
        if action == "activate":
            return await _activate(request, current, name, draft)
        if name in dry_run.DRY_RUN_SETS:
            active = await asyncio.to_thread(_active_rules, state, name)
            results = dry_run.dry_run(name, active, parsed, cases)
        problem = None
    except (RuleSetError, dry_run.DryRunError) as exc:
        problem = str(exc)
    return _render(
        request,
        "rule_set.html",
        current,
        400 if problem else 200,
        info=info,
        audit=audit,
        diff=None,
        a="",
        b="",
        msg=None if problem else f"The draft is valid (version {parsed.version}).",
        draft=draft,
        cases=cases,
        dry_runnable=name in dry_run.DRY_RUN_SETS,
        results=results,
        problem=problem,
    )


async def _activate(
    request: Request, current: session.ConsoleSession, name: str, draft: str
) -> Response:
    here = f"/console/rules/{name}"
    document = yaml.safe_load(draft)
    response = Response()
    try:
        # The admin API's activation: four eyes where activation.yaml asks for them.
        info = await admin.put_rules(
            response,
            name=name,
            document=document,
            state=_state(request),
            identity=_identity(current),
        )
    except ApiError as exc:
        return _back(here, f"Not activated: {exc.message}")
    if response.status_code == 202:
        return _back(here, "Asked: a second admin must approve this activation.")
    return _back(here, f"Activated: {info.active_version} is now active.")


@router.post("/rules/{name}/versions/{version}/approve")
async def rules_approve(
    request: Request, name: str, version: str, csrf: str | None = Form(default=None)
) -> Response:
    """A second admin approves another admin's pending activation."""
    current = _current(request, "admin")
    _check_csrf(request, current, csrf)
    _rule_set_name(name)
    here = f"/console/rules/{name}"
    try:
        info = await admin.approve_rules(
            name=name, version=version, state=_state(request), identity=_identity(current)
        )
    except ApiError as exc:
        return _back(here, f"Not approved: {exc.message}")
    return _back(here, f"Approved: {info.active_version} is now active.")


# --- helpers ----------------------------------------------------------------------------------


def _matches(value: str) -> bool:
    return re.match(SAFE_ID, value) is not None


def _safe(object_id: str) -> None:
    if not _matches(object_id):
        raise Refused("not a valid ID")


def _rule_set_name(name: str) -> None:
    if name not in RULE_FILES:
        raise Refused(f"no rule set {name!r}")


def _date(text: str, end: bool = False) -> datetime | None:
    """A date (YYYY-MM-DD, UTC; `end`: the day after) or an ISO datetime, or None."""
    if not text:
        return None
    if len(text) == 10:
        day = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return day + timedelta(days=1) if end else day
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def _ui_link(state: ApiState, workflow_id: str) -> str:
    client = await state.client()
    base = state.settings.temporal_ui_url.rstrip("/")
    return f"{base}/namespaces/{quote(client.namespace)}/workflows/{quote(workflow_id)}"


def _yaml(content: dict[str, Any]) -> str:
    # Plain JSON types only (activated versions are stored as JSON): a stable, readable text.
    return yaml.safe_dump(json.loads(json.dumps(content, default=str)), sort_keys=True)


def _document(state: ApiState, name: str, version: str) -> dict[str, Any] | None:
    """The document of an activated version, else the file's if it is that version."""
    for stored in state.rule_versions.versions(name):
        if stored.version == version:
            return dict(stored.content)
    try:
        if state.rules.from_file(name).version != version:
            return None
        content = yaml.safe_load(state.rules.path(name).read_text(encoding="utf-8"))
    except (RuleSetError, OSError):
        return None
    return content if isinstance(content, dict) else None


def _active_rules(state: ApiState, name: str) -> Any:
    return {
        "alerts": state.rules.alert_rules,
        "credit": state.rules.credit_rules,
        "triggers": state.rules.trigger_rules,
        "conditions": state.rules.condition_rules,
    }[name]()


def _audit(state: ApiState, name: str) -> list[dict[str, Any]]:
    """Who did what, newest first: activations, requests, approvals."""
    rows: list[dict[str, Any]] = []
    for v in state.rule_versions.versions(name):
        rows.append(
            {"at": v.activated_at, "who": v.activated_by or "-", "what": f"activated {v.version}"}
        )
    for status in ("pending", "approved"):
        for r in state.rule_versions.requests(name, status):
            rows.append(
                {
                    "at": r.requested_at,
                    "who": r.requested_by,
                    "what": f"asked to activate {r.version}",
                }
            )
            if r.decided_at is not None:
                rows.append(
                    {
                        "at": r.decided_at,
                        "who": r.decided_by or "-",
                        "what": f"approved {r.version}",
                    }
                )
    rows.sort(key=lambda r: r["at"], reverse=True)
    return rows


# --- wiring -----------------------------------------------------------------------------------


def _seconds_left(due: datetime | None, now: datetime) -> str:
    if due is None:
        return "-"
    left = int((due - now).total_seconds())
    sign = "" if left >= 0 else "overdue "
    left = abs(left)
    days, rest = divmod(left, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    text = f"{days}d {hours}h" if days else f"{hours}h {minutes}m"
    return sign + text


templates.env.filters["sla"] = _seconds_left
templates.env.filters["when"] = lambda v: (
    v.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if isinstance(v, datetime) else (v or "-")
)


def install(app: FastAPI) -> None:
    """Mount the console (pages, static files, its redirects and refusals) on the API app."""
    app.include_router(router)
    app.state.console_logins = session.LoginThrottle()
    app.mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="console-static")

    async def sign_in(request: Request, _: Exception) -> Response:
        if request.method == "GET" and request.url.path.startswith("/console"):
            return RedirectResponse("/console/login", status_code=303)
        return HTMLResponse("<p>Sign in again: <a href='/console/login'>login</a></p>", 401)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return _render(request, "refused.html", None, 403, message=exc.message)

    app.add_exception_handler(SignIn, sign_in)
    app.add_exception_handler(Refused, refused)

    # The API answers a bad parameter or an unknown path in JSON; a person in the console gets
    # a page instead, with the same status. Installed after the API's handlers, which serve
    # every other path as before.
    api_invalid = app.exception_handlers[RequestValidationError]
    api_http = app.exception_handlers[StarletteHTTPException]

    async def invalid(request: Request, exc: Exception) -> Response:
        if not _console_path(request):
            return await _answer(api_invalid(request, exc))
        assert isinstance(exc, RequestValidationError)
        # Which fields only: the values may be personal data, and the page repeats nothing.
        fields = sorted({_field_name(e.get("loc", ())) for e in exc.errors()})
        message = f"This page cannot take the value given for: {', '.join(fields)}."
        return _problem(request, 422, "Cannot show that page", message)

    async def http_error(request: Request, exc: Exception) -> Response:
        if not _console_path(request):
            return await _answer(api_http(request, exc))
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return _problem(request, 404, "Not found", "There is no such console page.")
        return _problem(request, exc.status_code, "Cannot do that", str(exc.detail))

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)


async def _answer(result: Response | Awaitable[Response]) -> Response:
    # Starlette lets an exception handler be sync or async.
    return await result if inspect.isawaitable(result) else result


def _console_path(request: Request) -> bool:
    path = request.url.path
    return path == "/console" or path.startswith("/console/")


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("query", "state", 0) names the form or query field `state`.
    where = ("query", "body", "path", "header", "cookie")
    names = [p for p in loc if isinstance(p, str) and p not in where]
    return names[0] if names else "?"


def _problem(request: Request, status: int, heading: str, message: str) -> HTMLResponse:
    """An error page (the nav kept for a signed-in caller)."""
    try:
        current: session.ConsoleSession | None = _current(request)
    except (SignIn, Refused):
        current = None
    return _render(request, "problem.html", current, status, heading=heading, message=message)
