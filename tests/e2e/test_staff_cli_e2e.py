"""The staff commands against the running stack and its real API: a manager lists, reads and
decides a referred application; `alerts show --follow` waits for a customer's answer, and
`alerts list` finds the alert."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import date, timedelta

import httpx

from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import RunningStack
from tests.e2e.test_alerts_e2e import alert_with_its_sms
from tests.e2e.test_credit_e2e import application_body, in_state, submit
from tests.sandbox.servers import REPO_ROOT


def fiflow(
    stack: RunningStack, *args: str, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FIFLOW_API_URL": stack.api, "COLUMNS": "200"}
    for name in ("FIFLOW_API_KEY", "FIFLOW_STAFF_KEY"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "fiflow.starters.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        input=input,
        timeout=120,
    )


async def listed_by_cli(stack: RunningStack, wanted: str, *args: str) -> str:
    """The command's output once `wanted` is in it (visibility is eventually consistent)."""
    for _ in range(40):
        run = fiflow(stack, *args)
        assert run.returncode == 0, run.stderr
        if wanted in run.stdout:
            return run.stdout
        await asyncio.sleep(0.5)
    raise AssertionError(f"{wanted} never listed by fiflow {' '.join(args)}: {run.stdout}")


def borderline_customer(pool: CustomerPool, profiles: list[dict]) -> dict:
    """A free customer the credit-card rules refer for a borderline score (620-669)."""
    a_year_ago = (date.today() - timedelta(days=400)).isoformat()
    borderline = {
        p["customer_id"]
        for p in profiles
        if 620 <= p["score"] < 670
        and p["returned_payments_12m"] == 0
        and p["overdraft_days_12m"] <= 30
        and p["customer_since"] <= a_year_ago
        and p["monthly_debt_payments"] <= 1000
    }
    for c in pool._free:
        if c["customer_id"] in borderline and c.get("phone"):
            pool._free.remove(c)
            return c
    raise RuntimeError("the sandbox has no unused borderline applicant left")


async def test_a_manager_reads_and_decides_a_referred_application_from_the_cli(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, profiles: list[dict]
) -> None:
    customer = borderline_customer(pool, profiles)
    app_id = await submit(http, stack, application_body(customer["customer_id"]))
    await in_state(http, stack, app_id, "awaiting_review")

    # The real list endpoint reads Temporal's visibility, which catches up within moments.
    listed = await listed_by_cli(stack, app_id, "review", "list", "--all")
    row = next(line for line in listed.splitlines() if app_id in line)
    assert "credit_card" in row and "running" in row and "2d " in row  # P3D review deadline

    shown = fiflow(stack, "review", "show", app_id)
    assert shown.returncode == 0, shown.stderr
    assert "awaiting_review" in shown.stdout and "SCORE_BORDERLINE" in shown.stdout

    # Asked, answered no: nothing is decided.
    declined = fiflow(stack, "review", "decide", app_id, "approve", input="n\n")
    assert declined.returncode == 1 and "nothing decided" in declined.stderr
    # The shared reviewer key is no one: the API refuses it a decision.
    shared = fiflow(stack, "review", "decide", app_id, "approve", "--yes", "--key",
                    "local-reviewer-key")  # fmt: skip
    assert shared.returncode == 1 and "403" in shared.stderr
    usage = fiflow(stack, "review", "decide", app_id, "decline", "--amount", "10")
    assert usage.returncode == 2

    decided = fiflow(
        stack, "review", "decide", app_id, "approve", "--amount", "4000", "--note",
        "income verified", "--yes",
    )  # fmt: skip
    assert decided.returncode == 0, decided.stderr
    assert f"{app_id}: approve recorded" in decided.stdout
    done = await in_state(http, stack, app_id, "approved")
    assert done["status"]["decision"]["decided_by"] == "reviewer:reviewer-1"
    assert done["status"]["decision"]["approved_amount"] == "4000.00"

    again = fiflow(stack, "review", "decide", app_id, "decline", "--yes")
    assert again.returncode == 1 and "409" in again.stderr
    missing = fiflow(stack, "review", "show", "no-such-application")
    assert missing.returncode == 1 and "404 application_not_found" in missing.stderr


async def test_alerts_show_follows_an_alert_until_the_customer_answers(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool
) -> None:
    customer = pool.take()
    alert_id, _body, code = await alert_with_its_sms(http, stack, customer)
    follower = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fiflow.starters.cli", "alerts", "show", alert_id, "--follow",
        "--interval", "0.3", "--timeout", "90",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO_ROOT,
        env={**os.environ, "FIFLOW_API_URL": stack.api, "COLUMNS": "200"},
    )  # fmt: skip
    assert follower.stdout is not None
    first = (await asyncio.wait_for(follower.stdout.readline(), timeout=60)).decode()
    assert first.endswith(f"{alert_id}  awaiting_reply\n"), first
    assert follower.returncode is None, "it follows while the alert waits for a reply"
    r = await http.post(
        f"{stack.sandbox}/__sandbox/sms/inbound",
        json={"from": customer["phone"], "body": f"YES {code}"},
    )
    assert r.status_code == 200, r.text
    raw_out, raw_err = await asyncio.wait_for(follower.communicate(), timeout=100)
    out = raw_out.decode()
    assert follower.returncode == 0, raw_err.decode()
    # A line per state change, then the final panel.
    assert f"{alert_id}  confirmed" in out
    assert re.search(r"state\s+confirmed", out) and "record_fraud_outcome" in out

    listed = await listed_by_cli(
        stack, alert_id, "alerts", "list", "--state", "confirmed", "--type",
        "card_fraud_suspected", "--all",
    )  # fmt: skip
    row = next(line for line in listed.splitlines() if alert_id in line)
    assert "confirmed" in row and "sms" in row

    unknown = fiflow(stack, "alerts", "show", "al-none")
    assert unknown.returncode == 1 and "404" in unknown.stderr
