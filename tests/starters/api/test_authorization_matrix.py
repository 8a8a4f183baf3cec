"""Who may do what: every endpoint x caller x ownership, through the real app.

The app, its authentication, its database and its rule files are real; only the calls that
would reach Temporal (the client helpers) and the CRM are stubbed, returning objects owned by
customer OWNER. Beside the matrix: reviews take the reviewer from the identity, push replies
are bound to the device, four-eyes activations, OIDC staff tokens and session tokens.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml
from temporalio.client import Client

from fiflow.domain.alerts import AlertState, AlertStatus
from fiflow.domain.credit import ApplicationState, ChildStatus, CreditApplicationStatus, Product
from fiflow.domain.credit_prefill import CreditPrefill, PrefillStatus
from fiflow.domain.customers import Customer
from fiflow.domain.follow_ups import FollowUpStatus, Ticket
from fiflow.domain.interactions import InteractionChannel, InteractionStatus
from fiflow.domain.notices import NoticeResult
from fiflow.domain.push_binding import alert_push_key, push_reply_token
from fiflow.integrations.database import upgrade_database
from fiflow.integrations.settings import Settings
from fiflow.starters.api import (
    alerts,
    channels,
    credit,
    credit_prefills,
    follow_ups,
    interactions,
    lists,
    notices,
)
from fiflow.starters.api.app import create_app
from fiflow.starters.api.sessions import mint_customer_session
from fiflow.starters.workflow_lists import Page
from fiflow.starters.workflow_views import Lookup, View
from tests.integrations.test_codec_auth import Issuer, issuer  # noqa: F401 - a fixture

OWNER, STRANGER = "cust-A", "cust-B"
DEVICE = "dev-A"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SETTINGS = Settings()
SESSION_KEY = SETTINGS.customer_session_key.get_secret_value()
PUSH_SECRET = SETTINGS.push_token_key.get_secret_value()


def session(customer_id: str) -> str:
    return mint_customer_session(SESSION_KEY, customer_id)


# Every kind of caller. Shared role keys come from FIFLOW_API_KEYS; persons from staff keys.
CALLERS: dict[str, dict[str, str]] = {
    "none": {},
    "system": {"X-API-Key": "local-system-key"},
    "channel": {"X-API-Key": "local-channel-key"},
    "channel+own": {"X-API-Key": "local-channel-key", "X-Customer-Session": session(OWNER)},
    "channel+other": {
        "X-API-Key": "local-channel-key",
        "X-Customer-Session": session(STRANGER),
    },
    "reviewer-shared": {"X-API-Key": "local-reviewer-key"},
    "admin-shared": {"X-API-Key": "local-admin-key"},
    "reviewer-person": {"X-API-Key": "local-reviewer-1-key"},
    "admin-person": {"X-API-Key": "local-admin-1-key"},
}


def expect(default: int, **by_caller: int) -> dict[str, int]:
    """Expected status per caller: `default` for every caller with a role not named."""
    table = {c: default for c in CALLERS}
    table["none"] = 401
    table.update({k.replace("_", "-").replace("-own", "+own").replace("-other", "+other"): v
                  for k, v in by_caller.items()})  # fmt: skip
    return table


def scoped(ok: int, *roles: str) -> dict[str, int]:
    """A read of a customer's object: channel needs its session (403), another's is 404."""
    table = expect(403)
    for role in roles:
        table.update({c: ok for c in CALLERS if c.startswith(role)})
    if "channel" in roles:
        table.update({"channel": 403, "channel+own": ok, "channel+other": 404})
    return table


def only(ok: int, *callers: str) -> dict[str, int]:
    table = expect(403)
    table.update({c: ok for c in callers})
    return table


STAFF = ("reviewer-shared", "admin-shared", "reviewer-person", "admin-person")
CHANNELS = ("channel", "channel+own", "channel+other")
PUSH_TOKEN = push_reply_token(alert_push_key(PUSH_SECRET, "al-1"), DEVICE)
TRIGGERS = yaml.safe_load(Path("fiflow/rules/triggers.yaml").read_text())
CREDIT = yaml.safe_load(Path("fiflow/rules/credit.yaml").read_text())


@dataclass
class Row:
    method: str
    path: str
    expected: dict[str, int]
    body: dict[str, Any] | None = None
    id: str = ""


def _alert_body() -> dict[str, Any]:
    return {
        "source_event_id": "evt-1",
        "customer_id": OWNER,
        "alert_type": "card_fraud_suspected",
        "transaction": {"amount": "12.00", "currency": "USD", "merchant": "ACME",
                        "occurred_at": NOW.isoformat(), "card_last4": "4242"},
    }  # fmt: skip


MATRIX = [
    Row("POST", "/v1/alerts", only(202, "system"), _alert_body()),
    Row("GET", "/v1/alerts/al-1", {**scoped(200, "channel", *STAFF), "system": 200}),
    Row("GET", "/v1/notices/nt-1", {**scoped(200, "channel", *STAFF), "system": 200}),
    Row("POST", "/v1/channels/push/replies", only(202, *CHANNELS),
        {"alert_id": "al-1", "action": "confirm", "device_id": DEVICE, "token": PUSH_TOKEN}),
    Row("POST", "/v1/credit-applications", only(202, *CHANNELS),
        {"application_id": "app-new", "customer_id": OWNER, "product": "credit_card",
         "requested_amount": "5000.00", "stated_monthly_income": "6000.00",
         "consent": {"credit_pull": True, "given_at": NOW.isoformat()}}),
    Row("GET", "/v1/credit-applications/app-review", scoped(200, "channel", *STAFF)),
    Row("POST", "/v1/credit-applications/app-review/review", only(200, "reviewer-person"),
        {"decision": "approve", "note": "ok"}),
    Row("POST", "/v1/credit-applications/app-docs/documents", scoped(200, "channel"),
        {"submission_id": "sub-1", "documents": [{"kind": "payslip", "reference": "r-1"}]}),
    Row("GET", "/v1/reports/credit-applications", only(200, *STAFF)),
    # Staff lists: every customer's objects, so never a channel (not even with a session).
    Row("GET", "/v1/credit-applications", only(200, *STAFF)),
    Row("GET", "/v1/alerts", only(200, *STAFF)),
    Row("GET", "/v1/reports/credit-applications/app-review", only(404, *STAFF)),
    # Results reports of alerts and follow-ups: staff only, like the credit reports.
    Row("GET", "/v1/reports/alerts", only(200, *STAFF)),
    Row("GET", "/v1/reports/follow-ups", only(200, *STAFF)),
    Row("GET", "/v1/alerts/al-1/report", only(404, *STAFF)),
    Row("GET", "/v1/follow-ups/fu-1/report", only(404, *STAFF)),
    # Business metrics: staff only (figures over every customer, though no personal data).
    Row("GET", "/v1/metrics/summary", only(200, *STAFF)),
    Row("POST", "/v1/interactions/ia-1/events", only(202, *CHANNELS),
        {"event_id": "ev-1", "customer_id": OWNER, "channel": "app", "type": "interaction_started",
         "attributes": {}, "occurred_at": NOW.isoformat()}),
    Row("GET", "/v1/interactions/ia-1", scoped(200, "channel", *STAFF)),
    Row("POST", "/v1/follow-ups", only(202, "system", *CHANNELS),
        {"follow_up_id": "fu-new", "customer_id": OWNER, "ticket_id": "tkt-1",
         "reason": "unresolved", "follow_up_at": (NOW.now(UTC) + timedelta(days=1)).isoformat()}),
    Row("GET", "/v1/follow-ups/fu-1", {**scoped(200, "channel", *STAFF), "system": 200}),
    Row("POST", "/v1/follow-ups/fu-1/resolved", {**scoped(200, "channel"), "system": 200},
        {"note": "sorted"}),
    Row("POST", "/v1/follow-ups/fu-1/reschedule", {**scoped(200, "channel"), "system": 200},
        {"follow_up_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()}),
    Row("GET", "/v1/credit-prefills/pf-1", scoped(200, "channel", *STAFF)),
    Row("GET", "/v1/admin/rules", only(200, "admin-shared", "admin-person")),
    Row("PUT", "/v1/admin/rules/triggers", only(200, "admin-person"), TRIGGERS),
    Row("POST", "/v1/admin/rules/credit/versions/v9/approve", only(404, "admin-person")),
    Row("GET", "/v1/admin/rules/credit/versions/v9", only(404, "admin-shared", "admin-person")),
    # Without a file's content type the upload is refused after the role check.
    Row("POST", "/v1/feeds/batches", only(422, "system")),
    Row("GET", "/v1/feeds/batches/b" + "0" * 32, only(404, "system", *STAFF)),
    # Without NDJSON's content type the publish is refused after the role check.
    Row("POST", "/v1/feeds/transactions", only(422, "system")),
    Row("GET", f"/v1/customers/{OWNER}/alert-preferences", scoped(200, "channel")),
    Row("PUT", f"/v1/customers/{OWNER}/alert-preferences", scoped(200, "channel"),
        {"preferences": [{"kind": "declined", "channel": "push"}]}),
]  # fmt: skip


# --- the stubbed boundary ------------------------------------------------------------------


def _child(name: str) -> ChildStatus:
    return ChildStatus(workflow_id=name, state="completed")


def _application(app_id: str, app_state: ApplicationState) -> CreditApplicationStatus:
    return CreditApplicationStatus(
        application_id=app_id,
        customer_id=OWNER,
        product=Product.CREDIT_CARD,
        requested_amount=Decimal("5000.00"),
        state=app_state,
        credit_check=_child("cc"),
        account_history=_child("ah"),
    )


@dataclass
class Boundary:
    """What reached the stubbed Temporal boundary."""

    alerts: dict[str, AlertStatus] = field(default_factory=dict)
    delivered: list[tuple[str, Any]] = field(default_factory=list)


class FakeCrm:
    async def get_customer(self, customer_id: str) -> Customer:
        return Customer(customer_id=customer_id)

    async def find_by_phone(self, _phone: str) -> Customer | None:
        return None

    async def get_ticket(self, ticket_id: str) -> Ticket:
        return Ticket(ticket_id=ticket_id, customer_id=OWNER, status="open", subject="card")


class FakeHandle:
    def __init__(self, boundary: Boundary) -> None:
        self._boundary = boundary

    async def signal(self, _signal: Any, arg: Any) -> None:
        self._boundary.delivered.append(("signal", arg))


class FakeClient:
    def __init__(self, boundary: Boundary) -> None:
        self._boundary = boundary

    def get_workflow_handle(self, _workflow_id: str) -> FakeHandle:
        return FakeHandle(self._boundary)


def _view(status: Any) -> View[Any]:
    return View(Lookup.RUNNING, status, "running")


@pytest.fixture
def boundary(monkeypatch: pytest.MonkeyPatch) -> Boundary:
    b = Boundary()
    b.alerts["al-1"] = AlertStatus(
        alert_id="al-1",
        alert_type="card_fraud_suspected",
        customer_id=OWNER,
        state=AlertState.AWAITING_REPLY,
        pushed_to=[DEVICE],
    )
    b.alerts["al-sms"] = AlertStatus(
        alert_id="al-sms",
        alert_type="card_fraud_suspected",
        customer_id=OWNER,
        state=AlertState.AWAITING_REPLY,
    )
    applications = {
        "app-review": _application("app-review", ApplicationState.AWAITING_REVIEW),
        "app-docs": _application("app-docs", ApplicationState.AWAITING_DOCUMENTS),
    }

    async def alert_view(_client: Any, alert_id: str) -> View[AlertStatus]:
        status = b.alerts.get(alert_id)
        return _view(status) if status else View(Lookup.NOT_FOUND)

    async def application_view(_client: Any, app_id: str) -> View[CreditApplicationStatus]:
        status = applications.get(app_id)
        return _view(status) if status else View(Lookup.NOT_FOUND)

    async def record(name: str, *args: Any, **_kw: Any) -> Any:
        b.delivered.append((name, args[-1] if args else None))

    async def submit(_client: Any, app_id: str, arg: Any, *_rest: Any) -> CreditApplicationStatus:
        b.delivered.append(("update", arg))
        return applications[app_id]

    async def deliver_event(*_args: Any) -> bool:
        return True

    async def start_alert(*_args: Any) -> str:
        return "al-new"

    async def interaction_view(_client: Any, iid: str) -> View[InteractionStatus]:
        return _view(
            InteractionStatus(interaction_id=iid, customer_id=OWNER, channel=InteractionChannel.APP)
        )

    async def follow_up_view(_client: Any, fid: str) -> View[FollowUpStatus]:
        return _view(
            FollowUpStatus(
                follow_up_id=fid, customer_id=OWNER, ticket_id="t", reason="x", follow_up_at=NOW
            )
        )

    async def prefill_view(_client: Any, _wid: str, _type: str, _rt: Any) -> View[PrefillStatus]:
        prefill = CreditPrefill(
            prefill_id="pf-1", customer_id=OWNER, product=Product.CREDIT_CARD,
            rule_set_version="r1", suggested_amount=Decimal("1000"), term_months=None,
            customer_since=None, tenure_months=None, history_available=True, prepared_at=NOW,
        )  # fmt: skip
        return _view(PrefillStatus(prefill_id="pf-1", state="ready", prefill=prefill))

    async def notice_view(_client: Any, workflow_id: str, *_rest: Any) -> View[NoticeResult]:
        if workflow_id != "notice-nt-1":
            return View(Lookup.NOT_FOUND)
        return _view(NoticeResult(notice_id="nt-1", alert_type="declined", customer_id=OWNER))

    async def no_op(*_args: Any, **_kw: Any) -> None:
        return None

    async def empty_page(*_args: Any, **_kw: Any) -> Page[Any]:
        return Page([], None)

    for module, name, fake in (
        (alerts, "alert_view", alert_view),
        (alerts, "start_alert", start_alert),
        (channels, "alert_view", alert_view),
        (channels, "deliver_push_reply", lambda *a: record("push", *a)),
        (credit, "application_view", application_view),
        (credit, "start_application", no_op),
        (credit, "submit_review", submit),
        (credit, "submit_documents", submit),
        (interactions, "interaction_view", interaction_view),
        (interactions, "deliver_event", deliver_event),
        (follow_ups, "follow_up_view", follow_up_view),
        (follow_ups, "start_follow_up", no_op),
        (credit_prefills, "workflow_view", prefill_view),
        (notices, "workflow_view", notice_view),
        (lists, "list_applications", empty_page),
        (lists, "list_alerts", empty_page),
    ):
        monkeypatch.setattr(module, name, fake)
    return b


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'fiflow.db'}"
    upgrade_database(url)
    return url


def _app_client(settings: Settings, boundary: Boundary) -> httpx.AsyncClient:
    app = create_app(settings, client=cast(Client, FakeClient(boundary)))
    app.state.fiflow.crm = FakeCrm()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.fixture
async def api(db_url: str, boundary: Boundary) -> AsyncIterator[httpx.AsyncClient]:
    async with _app_client(Settings(database_url=db_url), boundary) as c:
        yield c


# --- the matrix ------------------------------------------------------------------------------


@pytest.mark.parametrize("row", MATRIX, ids=[f"{r.method} {r.path}" for r in MATRIX])
async def test_authorization_matrix(row: Row, api: httpx.AsyncClient) -> None:
    assert set(row.expected) == set(CALLERS)
    got = {}
    for caller, headers in CALLERS.items():
        r = await api.request(row.method, row.path, json=row.body, headers=headers)
        got[caller] = r.status_code
        if r.status_code >= 400:
            assert r.json()["code"], r.text  # the API's error shape, whoever asks
    assert got == row.expected


def test_the_matrix_covers_every_endpoint(db_url: str) -> None:
    app = create_app(Settings(database_url=db_url), client=cast(Client, object()))
    routes = {
        (method, route.path)  # type: ignore[attr-defined]
        for route in app.routes
        for method in getattr(route, "methods", set()) - {"HEAD", "OPTIONS"}
        if route.path.startswith("/v1/")  # type: ignore[attr-defined]
    }
    routes.discard(("POST", "/v1/channels/sms/inbound"))  # signed by the provider: test_sms_ledger
    covered = {
        (method, path)
        for method, path in routes
        for row in MATRIX
        if row.method == method and re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", path), row.path)
    }
    assert routes - covered == set()


# --- the paths behind the matrix -------------------------------------------------------------


async def test_the_reviewer_is_the_identity_never_the_body(
    api: httpx.AsyncClient, boundary: Boundary
) -> None:
    url = "/v1/credit-applications/app-review/review"
    person = CALLERS["reviewer-person"]
    impostor = await api.post(
        url, json={"decision": "approve", "reviewer_id": "someone-else"}, headers=person
    )
    assert (impostor.status_code, impostor.json()["code"]) == (403, "reviewer_mismatch")
    shared = await api.post(url, json={"decision": "approve"}, headers=CALLERS["reviewer-shared"])
    assert (shared.status_code, shared.json()["code"]) == (403, "person_required")
    assert boundary.delivered == []

    same = await api.post(url, json={"decision": "approve", "reviewer_id": "reviewer-1"},
                          headers=person)  # fmt: skip
    plain = await api.post(url, json={"decision": "decline"}, headers=person)
    assert (same.status_code, plain.status_code) == (200, 200)
    assert [arg.reviewer_id for _, arg in boundary.delivered] == ["reviewer-1", "reviewer-1"]


async def test_a_push_reply_needs_the_token_pushed_to_that_device(
    api: httpx.AsyncClient, boundary: Boundary
) -> None:
    url = "/v1/channels/push/replies"
    headers = CALLERS["channel"]
    good = {"alert_id": "al-1", "action": "contest", "device_id": DEVICE, "token": PUSH_TOKEN}
    other_device = push_reply_token(alert_push_key(PUSH_SECRET, "al-1"), "dev-B")
    sms_alert_token = push_reply_token(alert_push_key(PUSH_SECRET, "al-sms"), DEVICE)
    unknown_token = push_reply_token(alert_push_key(PUSH_SECRET, "al-none"), DEVICE)
    refused = [
        ({**good, "token": "forged"}, 403, "invalid_push_token"),
        ({**good, "token": PUSH_TOKEN[:-1] + "A"}, 403, "invalid_push_token"),
        ({**good, "device_id": "dev-B"}, 403, "invalid_push_token"),  # A's token on B
        ({**good, "device_id": "dev-B", "token": other_device}, 403, "not_pushed_to_device"),
        ({**good, "alert_id": "al-sms", "token": sms_alert_token}, 403, "not_pushed_to_device"),
        ({**good, "alert_id": "al-2"}, 403, "invalid_push_token"),  # al-1's token elsewhere
        ({**good, "alert_id": "al-none", "token": unknown_token}, 404, "alert_not_found"),
    ]
    for body, status, code in refused:
        r = await api.post(url, json=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (status, code), body
    missing = {k: v for k, v in good.items() if k != "token"}
    assert (await api.post(url, json=missing, headers=headers)).status_code == 422
    assert boundary.delivered == []  # nothing reached any alert
    assert boundary.alerts["al-1"].reply is None

    assert (await api.post(url, json=good, headers=headers)).status_code == 202
    assert [name for name, _ in boundary.delivered] == ["push"]


async def test_four_eyes_activation_needs_a_second_admin(
    api: httpx.AsyncClient, boundary: Boundary
) -> None:
    url = "/v1/admin/rules/credit"
    document = dict(CREDIT)
    before = (await api.get("/v1/admin/rules", headers=CALLERS["admin-person"])).json()
    old = next(r for r in before if r["name"] == "credit")["active_version"]
    document["version"] = "four-eyes-1"
    admin_1, admin_2 = CALLERS["admin-person"], {"X-API-Key": "local-admin-2-key"}

    asked = await api.put(url, json=document, headers=admin_1)
    assert asked.status_code == 202, asked.text
    info = asked.json()
    assert info["second_admin_required"] and info["active_version"] == old
    assert [(p["version"], p["requested_by"]) for p in info["pending"]] == [
        ("four-eyes-1", "admin-1")
    ]
    self_approval = await api.post(f"{url}/versions/four-eyes-1/approve", headers=admin_1)
    assert (self_approval.status_code, self_approval.json()["code"]) == (
        403,
        "second_admin_required",
    )
    shared = await api.post(f"{url}/versions/four-eyes-1/approve", headers=CALLERS["admin-shared"])
    assert (shared.status_code, shared.json()["code"]) == (403, "person_required")
    still = (await api.get("/v1/admin/rules", headers=admin_1)).json()
    assert next(r for r in still if r["name"] == "credit")["active_version"] == old

    approved = await api.post(f"{url}/versions/four-eyes-1/approve", headers=admin_2)
    assert approved.status_code == 200, approved.text
    info = approved.json()
    assert info["active_version"] == "four-eyes-1" and info["pending"] == []
    active = next(v for v in info["versions"] if v["active"])
    assert (active["activated_by"], active["approved_by"]) == ("admin-1", "admin-2")
    again = await api.post(f"{url}/versions/four-eyes-1/approve", headers=admin_2)
    assert (again.status_code, again.json()["code"]) == (404, "no_pending_activation")


async def test_a_single_admin_rule_set_records_who_activated_it(api: httpx.AsyncClient) -> None:
    document = {**TRIGGERS, "version": "solo-1"}
    r = await api.put("/v1/admin/rules/triggers", json=document, headers=CALLERS["admin-person"])
    assert r.status_code == 200, r.text
    active = next(v for v in r.json()["versions"] if v["active"])
    assert (active["version"], active["activated_by"], active["approved_by"]) == (
        "solo-1",
        "admin-1",
        None,
    )


async def test_customer_sessions_must_verify(api: httpx.AsyncClient) -> None:
    key = CALLERS["channel"]
    for token in (
        mint_customer_session("another-key-of-at-least-thirty-two-bytes", OWNER),
        mint_customer_session(SESSION_KEY, OWNER, now=datetime.now(UTC).timestamp() - 3600),
        mint_customer_session(SESSION_KEY, OWNER, ttl=timedelta(days=30)),
        "not-a-token",
    ):
        r = await api.get("/v1/alerts/al-1", headers={**key, "X-Customer-Session": token})
        assert (r.status_code, r.json()["code"]) == (403, "invalid_customer_session")
    # A session means nothing to a system key: it reads everything regardless.
    r = await api.get(
        "/v1/alerts/al-1", headers={**CALLERS["system"], "X-Customer-Session": "not-a-token"}
    )
    assert r.status_code == 200


async def test_staff_oidc_tokens_name_the_person(
    issuer: Issuer,  # noqa: F811 - the fixture imported above
    db_url: str,
    boundary: Boundary,
) -> None:
    settings = Settings(
        database_url=db_url,
        api_oidc_issuer=issuer.url,
        api_oidc_audience="temporal-ui",
        api_oidc_roles_claim="realm_access.roles",
    )
    url = "/v1/credit-applications/app-review/review"
    reviewer = issuer.token(sub="mgr-77", realm_access={"roles": ["fiflow-reviewer"]})
    admin = issuer.token(sub="adm-3", realm_access={"roles": ["fiflow-admin"]})
    no_role = issuer.token(sub="mgr-78", realm_access={"roles": ["other"]})
    bad_sub = issuer.token(sub="auth0|77", realm_access={"roles": ["fiflow-reviewer"]})
    expired = issuer.token(sub="mgr-77", exp=1, realm_access={"roles": ["fiflow-reviewer"]})

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async with _app_client(settings, boundary) as api:
        ok = await api.post(url, json={"decision": "approve"}, headers=bearer(reviewer))
        assert ok.status_code == 200, ok.text
        assert [arg.reviewer_id for _, arg in boundary.delivered] == ["mgr-77"]
        for token, status, code in (
            (admin, 403, "forbidden"),
            (no_role, 403, "forbidden"),
            (bad_sub, 403, "unusable_identity"),
            (expired, 401, "unauthorized"),
            ("garbage", 401, "unauthorized"),
        ):
            r = await api.post(url, json={"decision": "approve"}, headers=bearer(token))
            assert (r.status_code, r.json()["code"]) == (status, code)
        reports = await api.get("/v1/reports/credit-applications", headers=bearer(admin))
        assert reports.status_code == 200
    assert len(boundary.delivered) == 1
