"""Console pages that need no Temporal: sign-in rules, CSRF, rules versions, diff, dry run."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import httpx
import pytest
from temporalio.client import Client

from fiflow.integrations.database import upgrade_database
from fiflow.integrations.settings import Settings
from fiflow.starters.api.app import create_app
from fiflow.starters.console import session


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    upgrade_database(url)
    app = create_app(Settings(database_url=url), client=cast(Client, object()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


async def sign_in(c: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await c.get("/console/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce
    return await c.post("/console/login", data={"credential": key, "nonce": nonce[1]})


def csrf_of(text: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', text)
    assert found
    return found[1]


async def test_only_staff_sign_in_and_forms_need_the_csrf_token(
    console: httpx.AsyncClient,
) -> None:
    assert (await console.get("/console/inbox")).headers["location"] == "/console/login"
    for key, status in (("local-channel-key", 403), ("local-system-key", 403), ("nope", 401)):
        r = await sign_in(console, key)
        assert r.status_code == status
        assert session.COOKIE not in console.cookies
    r = await sign_in(console, "local-admin-1-key")
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "local-admin-1-key" not in cookie
    page = await console.get("/console/rules/credit")
    assert page.status_code == 200 and "Audit" in page.text
    # A form without this session's token is refused, whatever else it carries.
    r = await console.post("/console/rules/credit/dry-run", data={"draft": "x", "csrf": "forged"})
    assert r.status_code == 403
    # A reviewer may not open the rules pages.
    console.cookies.clear()
    await sign_in(console, "local-reviewer-1-key")
    assert (await console.get("/console/rules")).status_code == 403


async def test_dry_run_shows_what_a_draft_changes_and_a_diff_of_versions(
    console: httpx.AsyncClient,
) -> None:
    await sign_in(console, "local-admin-1-key")
    page = await console.get("/console/rules/credit")
    token = csrf_of(page.text)
    draft = re.search(r'<textarea name="draft"[^>]*>(.*?)</textarea>', page.text, re.S)
    cases = re.search(r'<textarea name="cases"[^>]*>(.*?)</textarea>', page.text, re.S)
    assert draft and cases
    # Approving bands raised above 780: the first sample is referred instead of approved.
    text = html.unescape(draft[1]).replace("min_score: 740", "min_score: 800")
    text = text.replace("min_score: 670", "min_score: 790")
    text = re.sub(r"^version: .*$", "version: draft-1", text, flags=re.M)
    r = await console.post(
        "/console/rules/credit/dry-run",
        data={"draft": text, "cases": html.unescape(cases[1]), "csrf": token},
    )
    assert r.status_code == 200, r.text
    assert 'data-testid="dry-run"' in r.text
    assert (
        'class="changed"><td>credit_card · 5000.00 · 780</td><td>approve 5000.00</td><td>refer'
        in r.text
    )
    bad = await console.post(
        "/console/rules/credit/dry-run", data={"draft": "version: [", "csrf": token}
    )
    assert bad.status_code == 400 and 'data-testid="problem"' in bad.text

    # Activate the draft (credit needs four eyes: asked), then a second admin approves.
    asked = await console.post(
        "/console/rules/credit/dry-run",
        data={"draft": text, "cases": "", "csrf": token, "action": "activate"},
    )
    assert asked.status_code == 303
    page = await console.get(asked.headers["location"])
    assert "second admin" in page.text and "draft-1" in page.text
    assert "Approve</button>" not in page.text  # not by the admin who asked
    console.cookies.clear()
    await sign_in(console, "local-admin-2-key")
    page = await console.get("/console/rules/credit")
    r = await console.post(
        "/console/rules/credit/versions/draft-1/approve", data={"csrf": csrf_of(page.text)}
    )
    assert r.status_code == 303
    page = await console.get("/console/rules/credit")
    assert 'data-testid="active-version">draft-1<' in page.text
    assert "admin-2" in page.text and "asked to activate draft-1" in page.text
    file_version = re.search(r"<td>([^<]+)</td><td>file</td>", page.text)
    assert file_version
    diff = await console.get("/console/rules/credit", params={"a": file_version[1], "b": "draft-1"})
    assert "-    - min_score: 740" in html.unescape(diff.text)
    assert "+    - min_score: 800" in html.unescape(diff.text)
