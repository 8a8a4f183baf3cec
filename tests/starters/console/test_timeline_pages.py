"""The console's timeline pages of an alert and of a notice, over real runs: the real workflows
and activities on the time-skipping server (stand-in back office), read through the API app."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from fiflow.domain import search_attributes as sa
from fiflow.domain.customers import Channel, Customer
from fiflow.domain.notices import NoticeStatus
from fiflow.integrations.codec import new_key
from fiflow.starters.api.app import create_app
from tests.starters.console.test_console_pages import sign_in
from tests.workflows.harness import (
    Harness,
    alert_request,
    code_in,
    poll_async,
    running_harness,
    sms_customer,
)
from tests.workflows.test_informational_alert import (
    LATE_EVENING,
    NOON,
    finish,
    notice,
    opt_out,
    skip_to_end,
    start,
    zone_at,
)


@pytest.fixture
async def h(
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Harness]:
    # A key ring, as every deployed API has: it reads the results reports with it.
    monkeypatch.setenv("FIFLOW_PAYLOAD_KEYS", new_key())
    async with running_harness(time_skipping_env, task_queue, tmp_path) as harness:
        yield harness


@pytest.fixture
async def console(h: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """The API app on the harness's server and database, a reviewer signed in."""
    app = create_app(h.settings, client=h.client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        assert (await sign_in(c, "local-reviewer-1-key")).status_code == 303
        yield c


def timeline(page: str) -> list[tuple[str, str]]:
    """The timeline table's (what, detail) rows, in page order."""
    table = re.search(r'<table data-testid="timeline">(.*?)</table>', page, re.S)
    assert table, page
    rows = re.findall(r"<tr><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td></tr>", table[1])
    return [(html.unescape(a), html.unescape(b)) for a, b in rows]


def shown(page: str, name: str) -> str:
    found = re.search(rf'data-testid="{name}"[^>]*>([^<]*)<', page)
    assert found, f"no {name} in the page"
    return html.unescape(found[1])


def no_personal_data(page: str, customer: Customer) -> None:
    # What the alert page never shows: who the customer is, or the message's contents.
    for value in (customer.customer_id, customer.phone or "", customer.name, "ACME", "4242"):
        assert value not in page, value


async def test_an_alert_timeline_links_its_results_report_once_it_is_decided(
    h: Harness, console: httpx.AsyncClient
) -> None:
    customer = h.add(sms_customer())
    handle = await h.start(alert_request(customer))
    alert_id = handle.id.removeprefix("alert-")
    [sms] = await h.wait_for_sms(customer.phone or "", 1)

    waiting = await console.get(f"/console/alerts/{alert_id}")
    assert waiting.status_code == 200
    assert shown(waiting.text, "state") == "awaiting_reply"
    assert 'data-testid="report-link"' not in waiting.text  # nothing decided, no report yet

    await h.reply(customer.phone or "", f"YES {code_in(sms)}")
    await h.finish(handle)
    page = await console.get(f"/console/alerts/{alert_id}")

    assert page.status_code == 200
    assert shown(page.text, "state") == "confirmed"
    steps = timeline(page.text)
    assert ("reply", "confirm by sms") in steps
    assert any(what.startswith("action ") and detail.startswith("done") for what, detail in steps)
    whats = [what for what, _ in steps]
    assert whats.index("sent") < whats.index("reply") < whats.index("decided"), whats
    link = re.search(r'<a href="([^"]+)" data-testid="report-link">', page.text)
    assert link and link[1] == f"/console/results/alerts/{alert_id}"
    report = await console.get(link[1])
    assert report.status_code == 200 and shown(report.text, "outcome") == "confirmed"
    assert f'href="/console/alerts/{alert_id}"' in report.text  # and back to the timeline
    ui = re.search(r'<a href="([^"]+)"[^>]*data-testid="ui-link"', page.text)
    assert ui and ui[1].endswith(f"/workflows/{handle.id}")
    no_personal_data(page.text, customer)
    # An alert is not a notice: no notice-<id> run exists for its ID.
    assert (await console.get(f"/console/notices/{alert_id}")).status_code == 404


async def test_a_notice_timeline_shows_what_went_out_on_which_channel_and_when(
    h: Harness, console: httpx.AsyncClient
) -> None:
    customer = h.add(sms_customer(timezone=await zone_at(h, NOON)))
    result = await finish(h, await start(h, notice(customer)))

    page = await console.get(f"/console/notices/{result.notice_id}")

    assert page.status_code == 200, page.text
    assert shown(page.text, "state") == "sent" and shown(page.text, "channel") == "sms"
    assert shown(page.text, "quiet-hours") == "not deferred"
    steps = timeline(page.text)
    assert [what for what, _ in steps] == ["received", "send sms", "sent", "completed"]
    assert dict(steps)["send sms"] == "done" and dict(steps)["sent"] == "by sms"
    ui = re.search(r'<a href="([^"]+)"[^>]*data-testid="ui-link"', page.text)
    assert ui and ui[1].endswith(f"/workflows/notice-{result.notice_id}")
    no_personal_data(page.text, customer)
    # Nor is a notice an alert: its ID opens no alert timeline.
    assert (await console.get(f"/console/alerts/{result.notice_id}")).status_code == 404


async def test_a_suppressed_notice_and_one_deferred_for_quiet_hours_say_so(
    h: Harness, console: httpx.AsyncClient
) -> None:
    stopped = h.add(sms_customer(timezone=await zone_at(h, NOON)))
    opt_out(h, stopped, "SM-stop-console")
    suppressed = await finish(h, await start(h, notice(stopped, channel=Channel.SMS)))
    page = await console.get(f"/console/notices/{suppressed.notice_id}")
    assert page.status_code == 200
    assert shown(page.text, "state") == NoticeStatus.SKIPPED_OPTED_OUT.value
    assert shown(page.text, "channel") == "-"
    assert ("send sms", "skipped address opted out") in timeline(page.text)
    assert ("completed", "skipped opted out") in timeline(page.text)
    no_personal_data(page.text, stopped)

    night = h.add(sms_customer(timezone=await zone_at(h, LATE_EVENING)))
    handle = await start(h, notice(night))
    await poll_async(
        handle.describe,
        lambda d: d.typed_search_attributes.get(sa.ALERT_STATE) == "waiting_quiet_hours",
    )
    notice_id = handle.id.removeprefix("notice-")
    waiting = await console.get(f"/console/notices/{notice_id}")
    assert waiting.status_code == 200
    assert shown(waiting.text, "state") == "waiting_quiet_hours"
    assert shown(waiting.text, "quiet-hours").startswith("deferred until ")
    assert [w for w, _ in timeline(waiting.text)] == ["received", "quiet hours end"]
    assert h.office.sms_to(night.phone or "") == []

    done = await skip_to_end(h, handle)
    sent = await console.get(f"/console/notices/{notice_id}")
    assert shown(sent.text, "state") == "sent"
    assert [w for w, _ in timeline(sent.text)] == [
        "received", "quiet hours end", "send sms", "sent", "completed",
    ]  # fmt: skip
    assert done.timings["sent"] >= done.timings["send_after"]
    no_personal_data(sent.text, night)


async def test_unknown_and_bad_ids_get_a_page_not_a_500(console: httpx.AsyncClient) -> None:
    missing = await console.get("/console/notices/nt-unknown")
    assert missing.status_code == 404 and "nt-unknown" in missing.text
    assert (await console.get("/console/notices/-bad")).status_code == 403
    console.cookies.clear()
    assert (await console.get("/console/notices/nt-unknown")).status_code == 303  # sign in
