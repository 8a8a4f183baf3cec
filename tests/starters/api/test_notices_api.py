"""`GET /v1/notices/{id}` and `fiflow alerts show nt-...` over a real notice run: the real
InformationalAlertWorkflow and its activities on the time-skipping server (stand-in back
office), read through the API app, served over real HTTP for the CLI."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from fiflow.starters.api.app import create_app
from fiflow.starters.api.sessions import mint_customer_session
from fiflow.starters.cli import app as cli_app
from tests.workflows.harness import Harness, running_harness, sms_customer
from tests.workflows.test_informational_alert import NOON, finish, notice, start, zone_at

SYSTEM = {"X-API-Key": "local-system-key"}


@pytest.fixture
async def h(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> AsyncIterator[Harness]:
    async with running_harness(time_skipping_env, task_queue, tmp_path) as harness:
        yield harness


@pytest.fixture
async def served(h: Harness) -> AsyncIterator[str]:
    """The API app on the harness's server, on a real port in this event loop."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(
        create_app(h.settings, client=h.client), host="127.0.0.1", port=port, log_level="error"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the API did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_a_notice_reads_through_the_api_with_its_attempts_and_owner_checks(
    h: Harness, served: str
) -> None:
    customer = h.add(sms_customer(timezone=await zone_at(h, NOON)))
    result = await finish(h, await start(h, notice(customer)))
    assert result.attempts  # what the API must show

    async with httpx.AsyncClient(base_url=served) as api:
        r = await api.get(f"/v1/notices/{result.notice_id}", headers=SYSTEM)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["notice_id"] == result.notice_id
        assert body["run_status"] == "completed"
        status = body["status"]
        assert (status["status"], status["channel"]) == ("sent", "sms")
        assert status["customer_id"] == customer.customer_id
        assert [(a["step"], a["outcome"]) for a in status["attempts"]] == [
            (a.step, a.outcome) for a in result.attempts
        ]

        # A channel app reads its own customer's notice only; another's is not there.
        channel = {"X-API-Key": "local-channel-key"}
        key = h.settings.customer_session_key.get_secret_value()
        own = {**channel, "X-Customer-Session": mint_customer_session(key, customer.customer_id)}
        other = {**channel, "X-Customer-Session": mint_customer_session(key, "cust-someone-else")}
        assert (await api.get(f"/v1/notices/{result.notice_id}", headers=own)).status_code == 200
        hidden = await api.get(f"/v1/notices/{result.notice_id}", headers=other)
        assert hidden.status_code == 404 and hidden.json()["code"] == "notice_not_found"

        missing = await api.get("/v1/notices/nt-unknown", headers=SYSTEM)
        assert missing.status_code == 404
        assert missing.json()["code"] == "notice_not_found" and missing.json()["message"]
        bad = await api.get("/v1/notices/-bad", headers=SYSTEM)
        assert bad.status_code == 422 and bad.json()["code"]


async def test_fiflow_alerts_show_reads_a_notice_by_its_id(h: Harness, served: str) -> None:
    customer = h.add(sms_customer(timezone=await zone_at(h, NOON)))
    result = await finish(h, await start(h, notice(customer)))

    def fiflow(*args: str) -> object:
        env = {"COLUMNS": "200", "FIFLOW_STAFF_KEY": "local-reviewer-1-key"}
        return CliRunner().invoke(cli_app, list(args), env=env)

    shown = await asyncio.to_thread(fiflow, "alerts", "show", result.notice_id, "--api", served)
    assert shown.exit_code == 0, shown.output  # type: ignore[attr-defined]
    lines = [" ".join(line.strip("│ ").split()) for line in shown.stdout.splitlines()]  # type: ignore[attr-defined]
    assert "status sent" in lines and "channel sms" in lines, lines
    assert [line for line in lines if line.startswith("attempt ")] == [
        f"attempt {a.step}: {a.outcome}" + (f" ({a.detail})" if a.detail else "")
        for a in result.attempts
    ]

    # --follow stops at once on a notice already final.
    followed = await asyncio.to_thread(
        fiflow, "alerts", "show", result.notice_id, "--follow", "--timeout", "10", "--api", served
    )
    assert followed.exit_code == 0, followed.output  # type: ignore[attr-defined]

    unknown = await asyncio.to_thread(fiflow, "alerts", "show", "nt-unknown", "--api", served)
    assert unknown.exit_code == 1  # type: ignore[attr-defined]
    assert "404 notice_not_found" in unknown.stderr  # type: ignore[attr-defined]
