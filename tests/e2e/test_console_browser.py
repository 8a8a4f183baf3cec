"""The staff console in a real browser (headless Debian Chromium driven by Playwright) on the
shared `fiflow up` stack: a reviewer approves a referred application through the page and the
sandbox's core banking shows the account opened; the dashboard shows the figures the metrics
API returns; a channel key is refused; a decided alert's timeline leads to its results report,
and a notice from the search to its timeline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import BrowserContext, Page, async_playwright, expect
from temporalio.client import Client, ScheduleOverlapPolicy

from fiflow.integrations.alert_starts import start_notice
from fiflow.integrations.settings import Settings
from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import CHANNEL_KEY, REVIEWER_KEY, REVIEWER_PERSON_KEY, RunningStack
from tests.e2e.test_alerts_e2e import alert, alert_with_its_sms
from tests.e2e.test_credit_e2e import application_body, in_state, sandbox, submit
from tests.e2e.test_notices_e2e import international_notice
from tests.e2e.test_web_ui_codec_browser import CHROMIUM_ARGS, WAIT_MS, chromium
from tests.e2e.waiting import eventually

CARD_PAYMENT_RATE = Decimal("0.03")  # the shipped credit_card rules' payment_rate


def referred_body(customer_id: str, profile: dict[str, Any]) -> dict[str, Any]:
    """A strong applicant whose stated income puts the debt-to-income ratio at 0.45: the
    shipped rules refer it (refer above 0.40, decline above 0.50)."""
    amount = Decimal("5000.00")
    debt = Decimal(str(profile["monthly_debt_payments"])) + amount * CARD_PAYMENT_RATE
    income = (debt / Decimal("0.45")).quantize(Decimal("0.01"))
    return application_body(
        customer_id, requested_amount=str(amount), stated_monthly_income=str(income)
    )


@asynccontextmanager
async def chromium_page(
    executable: str, tmp_path: Path
) -> AsyncIterator[tuple[BrowserContext, Page]]:
    """Headless Chromium with one page, closed on the way out; two minutes at most."""
    async with asyncio.timeout(120), async_playwright() as pw:
        browser = await pw.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=executable,
            args=CHROMIUM_ARGS,
            headless=True,
        )
        try:
            browser.set_default_timeout(WAIT_MS)
            yield browser, await browser.new_page()
        finally:
            await browser.close()


async def sign_in(page: Page, api: str, key: str) -> None:
    await page.goto(f"{api}/console/login")
    await page.fill("input[name=credential]", key)
    await page.click("button[type=submit]")


async def test_a_reviewer_approves_through_the_console(
    stack: RunningStack,
    http: httpx.AsyncClient,
    pool: CustomerPool,
    profiles: list[dict],
    tmp_path: Path,
    temporal: Client,
) -> None:
    executable = chromium()
    customer = pool.strong_applicant(profiles)
    cid = customer["customer_id"]
    profile = next(p for p in profiles if p["customer_id"] == cid)
    app_id = await submit(http, stack, referred_body(cid, profile))
    waiting = await in_state(http, stack, app_id, "awaiting_review")
    assert waiting["status"]["rules_decision"]["outcome"] == "refer"

    # The list endpoint the console and the staff CLI read: the inbox holds it, with its SLA.
    async def inbox() -> list[dict[str, Any]]:
        r = await http.get(f"{stack.api}/v1/credit-applications", headers=REVIEWER_KEY)
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    items = await eventually(inbox, lambda found: any(i["application_id"] == app_id for i in found))
    mine = next(i for i in items if i["application_id"] == app_id)
    assert mine["state"] == "awaiting_review" and mine["review_due_at"] and mine["product"]
    r = await http.get(f"{stack.api}/v1/credit-applications", headers=CHANNEL_KEY)
    assert r.status_code == 403

    async with chromium_page(executable, tmp_path) as (browser, page):
        # A channel key is not staff: refused, and no session cookie is set.
        await sign_in(page, stack.api, CHANNEL_KEY["X-API-Key"])
        await expect(page.get_by_test_id("refused")).to_be_visible()
        assert not [c for c in await browser.cookies() if c["name"] == "fiflow_console"]
        await page.goto(f"{stack.api}/console/inbox")
        assert page.url.endswith("/console/login")

        await sign_in(page, stack.api, REVIEWER_PERSON_KEY["X-API-Key"])
        await expect(page.get_by_test_id("who")).to_contain_text("reviewer-1")
        session = next(c for c in await browser.cookies() if c["name"] == "fiflow_console")
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        assert REVIEWER_PERSON_KEY["X-API-Key"] not in session["value"]

        row = page.locator(f'tr[data-application="{app_id}"]')
        await expect(row).to_contain_text("awaiting review")
        await row.get_by_role("link").click()
        await expect(page.get_by_test_id("state")).to_have_text("awaiting_review")
        await expect(page.get_by_test_id("fired-rules")).to_contain_text("refer")
        await page.fill("input[name=approved_amount]", "4000.00")
        await page.fill("textarea[name=note]", "verified income by phone")
        await page.get_by_role("button", name="Approve").click()
        await expect(page.get_by_test_id("msg")).to_contain_text("approve taken")
        await expect(page.locator(f'tr[data-application="{app_id}"]')).to_have_count(0)

        done = await in_state(http, stack, app_id, "approved")
        assert done["status"]["decision"]["decided_by"] == "reviewer:reviewer-1"
        assert done["status"]["decision"]["approved_amount"] == "4000.00"
        accounts = await eventually(
            lambda: sandbox(http, stack, "/__sandbox/core-banking/accounts", customer_id=cid),
            lambda found: len(found) == 1,
        )
        assert accounts[0]["status"] == "open"

        # The approval is a figure once the metrics schedule folded it: then the
        # dashboard shows, per metric and label set, what the metrics API returns.
        await eventually(
            lambda: _approvals_folded(temporal, http, stack), lambda n: n >= 1, within=30
        )
        await page.goto(f"{stack.api}/console/dashboards?period=day")
        await expect(page.locator("section.panel").first).to_be_visible()
        shown = {
            (
                await f.get_attribute("data-metric"),
                await f.get_attribute("data-labels"),
            ): int(await f.get_attribute("data-count") or -1)
            for f in await page.locator("tr.figure").all()
        }
        rng = page.get_by_test_id("range")
        r = await http.get(
            f"{stack.api}/v1/metrics/summary",
            params={
                "period": "day",
                "from": await rng.get_attribute("data-from") or "",
                "to": await rng.get_attribute("data-to") or "",
            },
            headers=REVIEWER_KEY,
        )
        assert r.status_code == 200, r.text
        expected = {
            (
                s["metric"],
                ", ".join(f"{k}={v}" for k, v in sorted(s["labels"].items())) or "(all)",
            ): sum(p["count"] for p in s["points"])
            for s in r.json()["series"]
        }
        assert shown == expected
        assert any(metric == "credit_applications" for metric, _ in shown), shown

        # Alerts search and reports render for a reviewer too.
        await page.goto(f"{stack.api}/console/alerts")
        await expect(page.get_by_test_id("alerts-table")).to_be_visible()
        await page.goto(f"{stack.api}/console/reports")
        await expect(page.get_by_test_id("reports-table")).to_be_visible()


async def _approvals_folded(temporal: Client, http: httpx.AsyncClient, stack: RunningStack) -> int:
    """Approved applications in today's figures, after one more pass of the metrics schedule."""
    await temporal.get_schedule_handle("fiflow-metrics").trigger(
        overlap=ScheduleOverlapPolicy.ALLOW_ALL
    )
    r = await http.get(
        f"{stack.api}/v1/metrics/summary", params={"period": "day"}, headers=REVIEWER_KEY
    )
    assert r.status_code == 200, r.text
    return sum(
        p["count"]
        for s in r.json()["series"]
        if s["metric"] == "credit_applications" and s["labels"].get("decision") == "approved"
        for p in s["points"]
    )


async def test_staff_follow_an_alert_to_its_report_and_a_notice_to_its_timeline(
    stack: RunningStack,
    http: httpx.AsyncClient,
    pool: CustomerPool,
    tmp_path: Path,
    temporal: Client,
) -> None:
    executable = chromium()
    customer = pool.take()
    alert_id, _, code = await alert_with_its_sms(http, stack, customer)
    r = await http.post(
        f"{stack.sandbox}/__sandbox/sms/inbound",
        json={"from": customer["phone"], "body": f"YES {code}"},
    )
    assert r.status_code == 200 and r.json()["webhook_status"] == 200, r.text
    await eventually(lambda: alert(http, stack, alert_id), lambda a: a["run_status"] == "completed")

    async def report_status() -> int:
        r = await http.get(f"{stack.api}/v1/alerts/{alert_id}/report", headers=REVIEWER_KEY)
        return r.status_code

    # Stored by the alert's last local activity: there once the run has completed.
    assert await eventually(report_status, lambda s: s == 200) == 200

    # A notice through the feeds' start path, as the stream consumer starts one.
    to_tell = pool.take()
    req = international_notice(to_tell)
    notice_id = await start_notice(temporal, Settings(), req, datetime.now(UTC))

    async def notice_listed() -> list[dict[str, Any]]:
        r = await http.get(
            f"{stack.api}/v1/alerts", params={"kind": "notice"}, headers=REVIEWER_KEY
        )
        assert r.status_code == 200, r.text
        return [i for i in r.json()["items"] if i["alert_id"] == notice_id]

    await eventually(notice_listed, lambda found: bool(found) and found[0]["state"] == "sent")

    async with chromium_page(executable, tmp_path) as (browser, page):
        await sign_in(page, stack.api, REVIEWER_PERSON_KEY["X-API-Key"])
        await expect(page.get_by_test_id("who")).to_contain_text("reviewer-1")

        await page.goto(f"{stack.api}/console/alerts/{alert_id}")
        await expect(page.get_by_test_id("state")).to_have_text("confirmed")
        run = await page.get_by_test_id("ui-link").get_attribute("href")
        assert run and run.endswith(f"/workflows/alert-{alert_id}")
        await page.get_by_test_id("report-link").click()
        await expect(page.get_by_test_id("outcome")).to_have_text("confirmed")
        assert page.url.endswith(f"/console/results/alerts/{alert_id}")

        await page.goto(f"{stack.api}/console/alerts?kind=notice")
        row = page.locator(f'tr[data-alert="{notice_id}"]')
        await row.get_by_role("link", name=notice_id).click()
        await expect(page.get_by_test_id("state")).to_have_text("sent")
        await expect(page.get_by_test_id("channel")).to_have_text("sms")
        await expect(page.get_by_test_id("timeline")).to_contain_text("send sms")
        run = await page.get_by_test_id("ui-link").get_attribute("href")
        assert run and run.endswith(f"/workflows/notice-{notice_id}")
        # The message itself names the amount, merchant and card: not on the page.
        body = await page.content()
        assert "ACME ONLINE" not in body and to_tell["phone"] not in body
        assert to_tell["customer_id"] not in body
