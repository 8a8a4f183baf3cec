"""Console sign-in: the failed-login throttle, and OIDC tokens verified against a real JWKS.

The JWKS is served over HTTP by the codec-auth tests' issuer (a loopback server publishing
the test key), so the console verifies tokens exactly as it would against a real provider.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client

from fiflow.integrations.database import upgrade_database
from fiflow.integrations.settings import Settings
from fiflow.starters.api.app import create_app
from fiflow.starters.console import session
from tests.integrations.test_codec_auth import AUDIENCE, Issuer, issuer  # noqa: F401 - fixture
from tests.starters.console.test_console_pages import sign_in

WRONG = "not-a-key-of-anyone"
ADMIN = "local-admin-1-key"


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    # Sign-in keeps nothing in the database: one migrated file serves the module.
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'fiflow.db'}"
    upgrade_database(url)
    return url


def console_app(db_url: str, **settings: Any) -> FastAPI:
    # These pages reach no Temporal: a placeholder client is never called.
    return create_app(Settings(database_url=db_url, **settings), client=cast(Client, object()))


@asynccontextmanager
async def browser(app: FastAPI, address: str = "203.0.113.7") -> AsyncIterator[httpx.AsyncClient]:
    """One browser at one client address (its own cookie jar)."""
    transport = httpx.ASGITransport(app=app, client=(address, 51000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked(db_url: str) -> tuple[FastAPI, Clock]:
    app = console_app(db_url)
    clock = Clock()
    app.state.console_logins = session.LoginThrottle(clock=clock)
    return app, clock


async def test_five_failures_from_one_address_then_429_until_they_age_out(
    clocked: tuple[FastAPI, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    app, clock = clocked
    caplog.set_level(logging.INFO, logger="fiflow.console")
    async with browser(app) as c:
        for n in range(session.LOGIN_FAILURES):
            r = await sign_in(c, f"{WRONG}-{n}")
            assert r.status_code == 401, n
        clock.now += 10
        # Even the right key waits: the address is throttled, whatever it presents.
        r = await sign_in(c, ADMIN)
        assert r.status_code == 429
        assert r.headers["retry-after"] == "50"
        assert "Too many failed sign-ins; try again in 50 s." in r.text
        assert 'name="credential"' in r.text  # still the login page, not an error page
        assert session.COOKIE not in c.cookies
        # Another address is not held back by this one.
        async with browser(app, "198.51.100.4") as other:
            assert (await sign_in(other, ADMIN)).status_code == 303
        clock.now += 50
        r = await sign_in(c, ADMIN)
        assert r.status_code == 303 and session.COOKIE in c.cookies

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged.count("console sign-in refused (unknown key)") == session.LOGIN_FAILURES
    assert "console sign-in throttled" in logged
    # Neither the presented keys nor the client address reach the log.
    assert WRONG not in logged and ADMIN not in logged
    assert "203.0.113.7" not in logged


async def test_one_credential_tried_from_many_addresses_is_throttled(
    clocked: tuple[FastAPI, Clock],
) -> None:
    app, _ = clocked
    for n in range(session.LOGIN_FAILURES):
        async with browser(app, f"192.0.2.{n + 1}") as c:
            assert (await sign_in(c, WRONG)).status_code == 401
    async with browser(app, "192.0.2.99") as c:
        refused = await sign_in(c, WRONG)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) == 60
        # The same fresh address may still sign in with a key of its own.
        assert (await sign_in(c, ADMIN)).status_code == 303


async def test_a_non_staff_key_counts_as_a_failure_and_a_success_does_not(
    clocked: tuple[FastAPI, Clock],
) -> None:
    app, _ = clocked
    async with browser(app) as c:
        for _ in range(session.LOGIN_FAILURES - 1):
            assert (await sign_in(c, ADMIN)).status_code == 303
            c.cookies.clear()
        for _ in range(session.LOGIN_FAILURES - 1):
            assert (await sign_in(c, "local-channel-key")).status_code == 403
        assert (await sign_in(c, ADMIN)).status_code == 303  # 4 failures: still allowed
        c.cookies.clear()
        assert (await sign_in(c, "local-channel-key")).status_code == 403
        assert (await sign_in(c, ADMIN)).status_code == 429


def test_the_throttle_forgets_the_stalest_subjects_past_its_bound() -> None:
    clock = Clock()
    throttle = session.LoginThrottle(failures=1, window_s=60, max_tracked=3, clock=clock)
    for subject in ("a", "b", "c", "d"):
        throttle.failed(subject)
    assert throttle.wait("a") == 0.0  # forgotten: the bound holds memory, not the limit
    assert throttle.wait("d") == 60.0
    throttle.forget("d")
    assert throttle.wait("d") == 0.0


# --- OIDC -------------------------------------------------------------------------------------


@pytest.fixture
def oidc_app(db_url: str, issuer: Issuer) -> FastAPI:  # noqa: F811 - the imported fixture
    return console_app(db_url, api_oidc_issuer=issuer.url, api_oidc_audience=AUDIENCE)


Token = Callable[..., str]


async def test_an_oidc_admin_token_signs_in_and_its_session_works(
    oidc_app: FastAPI,
    issuer: Issuer,  # noqa: F811 - the imported fixture
) -> None:
    async with browser(oidc_app) as c:
        r = await sign_in(c, issuer.token(sub="ana.admin", roles=["fiflow-admin", "other"]))
        assert r.status_code == 303 and r.headers["location"] == "/console/inbox"
        assert session.COOKIE in c.cookies
        page = await c.get("/console/rules")
        assert page.status_code == 200
        who = re.search(r'data-testid="who">([^<]+)<', page.text)
        assert who and who[1] == "ana.admin (admin)"


async def test_an_oidc_reviewer_gets_a_reviewers_session(
    oidc_app: FastAPI,
    issuer: Issuer,  # noqa: F811 - the imported fixture
) -> None:
    async with browser(oidc_app) as c:
        assert (await sign_in(c, issuer.token(roles=["fiflow-reviewer"]))).status_code == 303
        dashboards = await c.get("/console/dashboards")
        assert dashboards.status_code == 200 and "staff-17 (reviewer)" in dashboards.text
        assert (await c.get("/console/rules")).status_code == 403  # an admin page


@pytest.mark.parametrize(
    ("claims", "status", "says"),
    [
        ({"roles": ["fiflow-codec-reader"]}, 403, "no fiflow staff role"),
        ({}, 403, "no fiflow staff role"),
        ({"roles": ["fiflow-admin"], "exp": int(time.time()) - 60}, 401, ""),
        ({"roles": ["fiflow-admin"], "aud": "someone-else"}, 401, ""),
    ],
)
async def test_oidc_tokens_without_a_staff_role_or_not_valid_are_refused(
    oidc_app: FastAPI,
    issuer: Issuer,  # noqa: F811 - the imported fixture
    claims: dict[str, Any],
    status: int,
    says: str,
) -> None:
    async with browser(oidc_app) as c:
        r = await sign_in(c, issuer.token(**claims))
        assert r.status_code == status
        assert says in r.text and 'data-testid="error"' in r.text
        assert session.COOKIE not in c.cookies
        assert (await c.get("/console/rules")).headers["location"] == "/console/login"


async def test_an_oidc_token_signed_by_a_key_the_issuer_never_published_is_refused(
    oidc_app: FastAPI,
    issuer: Issuer,  # noqa: F811 - the imported fixture
) -> None:
    stranger = Issuer(issuer.url)  # the same claims, signed with another key
    async with browser(oidc_app) as c:
        r = await sign_in(c, stranger.token(roles=["fiflow-admin"]))
        assert r.status_code == 401 and session.COOKIE not in c.cookies
        # The issuer's own key still works from the same browser: nothing else was wrong.
        assert (await sign_in(c, issuer.token(roles=["fiflow-admin"]))).status_code == 303
