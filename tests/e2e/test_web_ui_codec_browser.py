"""The Temporal Web UI in a real browser (headless Debian Chromium driven by Playwright): an
alert's input is ciphertext until the codec server's token is entered in the UI's codec
settings, then it is the decoded alert."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import httpx
from playwright.async_api import Page, Response, async_playwright, expect
from temporalio.client import Client

from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import RunningStack
from tests.e2e.test_alerts_e2e import alert_body, outbox, post_alert
from tests.e2e.waiting import eventually

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; `make test` installs it when missing
# The machine's network is closed: without the background-networking flags Chromium's own
# update/sync/metrics connections are refused and slow it down.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000  # every browser wait is bounded by this (Playwright polls until then)


def chromium() -> str:
    """Debian's Chromium, which `make test` installs when it is missing."""
    assert CHROMIUM.exists(), f"no {CHROMIUM}: `make test` installs it (apt-get install chromium)"
    return str(CHROMIUM)


def record_decodes(page: Page, codec: str) -> list[int]:
    """The status of every call the page makes to the codec server, in order."""
    statuses: list[int] = []

    def seen(response: Response) -> None:
        if response.url.startswith(codec) and "/decode" in response.url:
            statuses.append(response.status)

    page.on("response", seen)
    return statuses


async def test_web_ui_shows_the_decoded_input_only_with_the_codec_token(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, tmp_path: Path
) -> None:
    executable = chromium()
    customer = pool.take()
    merchant = "Quokka Lantern Emporium 5521"
    alert_id = await post_alert(http, stack, alert_body(customer, "2468.13", merchant))
    await eventually(lambda: outbox(http, stack, customer["phone"]), lambda m: len(m) == 1)

    # What the server stores as the workflow's input: the UI without the token can show
    # nothing better than this ciphertext.
    raw = await Client.connect(stack.temporal)
    history = await raw.get_workflow_handle(f"alert-{alert_id}").fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    ciphertext = base64.b64encode(started.input.payloads[0].data).decode()
    assert merchant not in ciphertext

    url = f"{stack.ui}/namespaces/default/workflows/alert-{alert_id}"
    async with asyncio.timeout(40), async_playwright() as pw:
        browser = await pw.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",  # fresh: no codec settings from an earlier run
            executable_path=executable,
            args=CHROMIUM_ARGS,
            headless=True,
        )
        try:
            browser.set_default_timeout(WAIT_MS)
            page = await browser.new_page()
            decodes = record_decodes(page, stack.codec)
            await page.goto(url)
            # The workflow page's Input box (a read-only CodeMirror editor).
            input_box = page.get_by_test_id("input-and-result").get_by_role("textbox", name="Input")

            # Without the token: the cluster-level endpoint answers 401, the UI says so and
            # shows the stored ciphertext.
            status_error = page.get_by_test_id("data-encoder-status-error").filter(visible=True)
            await expect(status_error).to_have_count(1, timeout=WAIT_MS)
            await expect(input_box).to_contain_text(ciphertext[:64], timeout=WAIT_MS)
            banner = page.get_by_text("Codec Server could not connect").filter(visible=True)
            await expect(banner.first).to_be_visible()
            assert decodes and set(decodes) == {401}, decodes
            text = await page.evaluate("document.documentElement.textContent")
            assert merchant not in text and "2468.13" not in text

            # With the token, entered the way a person does: the codec icon in the top bar,
            # "use my browser setting", the endpoint `…/t/<token>`, Apply, reload.
            await status_error.click()
            dialog = page.locator("#data-encoder-settings")
            await dialog.get_by_label("Use my browser setting").check()
            await dialog.locator("#data-encoder-endpoint-input").fill(
                f"{stack.codec}/t/{stack.codec_token()}"
            )
            await dialog.get_by_role("button", name="Apply").click()
            decodes.clear()
            await page.reload()
            await expect(input_box).to_contain_text(merchant, timeout=WAIT_MS)
            await expect(input_box).to_contain_text('"amount": "2468.13"')
            await expect(input_box).not_to_contain_text(ciphertext[:64])
            success = page.get_by_test_id("data-encoder-status-success").filter(visible=True)
            await expect(success).to_have_count(1)
            assert 200 in decodes and 401 not in decodes, decodes
        finally:
            await browser.close()
