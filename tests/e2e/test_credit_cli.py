"""`fiflow credit ...` against the running stack: submit with progress, show, report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import RunningStack
from tests.sandbox.servers import REPO_ROOT


def fiflow(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FIFLOW_API_URL": stack.api}
    env.pop("FIFLOW_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "fiflow.starters.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
    )


def test_submit_follows_the_application_to_its_decision(
    stack: RunningStack, pool: CustomerPool, profiles: list[dict]
) -> None:
    customer = pool.strong_applicant(profiles)
    run = fiflow(
        stack,
        "credit",
        "submit",
        "--customer-id",
        customer["customer_id"],
        "--product",
        "overdraft",
        "--amount",
        "900.00",
        "--income",
        "5000.00",
        "--application-id",
        f"cli-{customer['customer_id']}",
        "--timeout",
        "60",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"submitted cli-{customer['customer_id']}"
    # Progress lines as it moves, the last one with the decision.
    assert "approved" in lines[-1] and "decided by rules, amount 900.00" in lines[-1]

    shown = fiflow(stack, "credit", "show", f"cli-{customer['customer_id']}")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"]["state"] == "approved"
    report = fiflow(stack, "credit", "report", f"cli-{customer['customer_id']}")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["decision"] == "approved"


def test_refused_submissions_and_unknown_applications_exit_non_zero(stack: RunningStack) -> None:
    refused = fiflow(
        stack,
        "credit",
        "submit",
        "--customer-id",
        "cust-0002",
        "--product",
        "credit_card",
        "--amount",
        "-5",
        "--income",
        "5000",
    )
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["code"] == "invalid_request"

    missing = fiflow(stack, "credit", "show", "no-such-application")
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["code"] == "application_not_found"

    unreachable = subprocess.run(
        [sys.executable, "-m", "fiflow.starters.cli", "credit", "show", "x"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        env={**os.environ, "FIFLOW_API_URL": "http://127.0.0.1:9"},
    )
    assert unreachable.returncode == 1
    assert "cannot reach the API" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
