"""Sandbox fixtures: one real sandbox process per session, reset before every test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.sandbox.servers import WebhookReceiver, sandbox_process, webhook_receiver

AUTH_TOKEN = "test-sms-auth-token"
ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
SMS_FROM = "+15550100000"
# The sandbox's calendar is pinned so tenures and statement months are exact. A month's last
# day in a leap year also exercises clamping: three months before it is 2024-02-29.
TODAY = "2024-05-31"


@pytest.fixture(scope="session")
def receiver() -> Iterator[WebhookReceiver]:
    """The SMS webhook the sandbox delivers customer replies to."""
    with webhook_receiver() as hook:
        yield hook


@pytest.fixture(scope="session")
def sandbox_url(receiver: WebhookReceiver) -> Iterator[str]:
    """Base URL of a sandbox started as `python -m fiflow.sandbox`."""
    env = {
        "SANDBOX_SMS_WEBHOOK_URL": receiver.url,
        "SANDBOX_SMS_AUTH_TOKEN": AUTH_TOKEN,
        "SANDBOX_ACCOUNT_SID": ACCOUNT_SID,
        "SANDBOX_SMS_FROM": SMS_FROM,
        "SANDBOX_TODAY": TODAY,
    }
    with sandbox_process(env) as url:
        yield url


@pytest.fixture
async def sandbox(sandbox_url: str, receiver: WebhookReceiver) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the sandbox, which starts each test from its seeded state."""
    receiver.requests.clear()
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=10) as client:
        response = await client.post("/__sandbox/reset")
        assert response.status_code == 200
        yield client
