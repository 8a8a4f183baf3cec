"""`fiflow credit ...`: submit, follow and review credit applications through the HTTP API."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import typer

from fiflow.starters.cli_support import api_call, exit_now, show

credit_app = typer.Typer(help="Credit applications (through the HTTP API).", no_args_is_help=True)

FINISHED = {"approved", "declined", "failed"}
# Someone else has to act next: following the application any longer would only wait.
WAITING_ON_PEOPLE = {"awaiting_review": "a manager's review", "awaiting_documents": "documents"}
CHANNEL_KEY = typer.Option("local-channel-key", envvar="FIFLOW_API_KEY", help="A channel key.")
# Following is an operator's read: a channel key would need the applicant's own session.
READ_KEY = typer.Option(
    "local-reviewer-key", envvar="FIFLOW_READ_KEY", help="A reviewer or admin key to read with."
)


def progress_line(app_id: str, status: dict[str, Any]) -> str:
    """One line that says where the application is."""
    parts = [
        f"{app_id}  {status['state']:<18}",
        f"credit check: {status['credit_check']['state']:<9}",
        f"account history: {status['account_history']['state']:<9}",
    ]
    rules = status.get("rules_decision")
    if rules:
        parts.append(f"rules: {rules['outcome']} {' '.join(rules['reasons'])}".rstrip())
    decision = status.get("decision")
    if status["state"] in FINISHED and decision:
        by = decision["decided_by"]
        amount = decision.get("approved_amount")
        parts.append(f"decided by {by}" + (f", amount {amount}" if amount else ""))
    return "  ".join(parts)


def follow(app_id: str, key: str, timeout: float) -> int:
    """Print a line each time the application moves; the exit code says how it ended."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        response = api_call("GET", f"/v1/credit-applications/{app_id}", key)
        if not response.is_success:
            show(response)
        view = response.json()
        status = view.get("status")
        if status is not None:
            line = progress_line(app_id, status)
            if line != last:
                typer.echo(line)
                last = line
            state = status["state"]
            if state in FINISHED:
                return 0 if state == "approved" else 4
            if state in WAITING_ON_PEOPLE:
                typer.echo(
                    f"waiting for {WAITING_ON_PEOPLE[state]}; follow it again with "
                    f"`fiflow credit show {app_id} --follow`"
                )
                return 0
        elif view["run_status"] != "running":
            typer.echo(f"{app_id}: run {view['run_status']}")
            return 1
        if time.monotonic() > deadline:
            typer.echo(f"still {status['state'] if status else 'starting'} after {timeout:.0f}s")
            return 3
        time.sleep(0.5)


@credit_app.command("submit")
def submit(
    customer_id: str = typer.Option(..., help="CRM customer ID, e.g. cust-0001."),
    product: str = typer.Option(..., help="credit_card, personal_loan or overdraft."),
    amount: str = typer.Option(..., help="Requested amount, e.g. 5000.00."),
    income: str = typer.Option(..., help="Stated monthly income, e.g. 6000.00."),
    term_months: int | None = typer.Option(None, help="Loan term (personal_loan only)."),
    consent: bool = typer.Option(True, help="The applicant consents to a credit pull."),
    application_id: str = typer.Option("", help="Defaults to a new unique ID."),
    follow_it: bool = typer.Option(True, "--follow/--no-follow", help="Show progress."),
    timeout: float = typer.Option(120.0, help="Seconds to follow before giving up."),
    api_key: str = CHANNEL_KEY,
    read_key: str = READ_KEY,
) -> None:
    """Submit an application, then follow it until it is decided or waits for a person.

    Exit codes: 0 approved (or waiting for a person), 4 declined or failed, 3 still running
    at --timeout, 1 refused by the API.
    """
    body: dict[str, Any] = {
        "application_id": application_id or f"cli-{uuid.uuid4().hex[:16]}",
        "customer_id": customer_id,
        "product": product,
        "requested_amount": amount,
        "stated_monthly_income": income,
        "consent": {"credit_pull": consent, "given_at": datetime.now(UTC).isoformat()},
    }
    if term_months is not None:
        body["term_months"] = term_months
    response = api_call("POST", "/v1/credit-applications", api_key, body)
    if not response.is_success or not follow_it:
        show(response)
    app_id = response.json()["application_id"]
    typer.echo(f"submitted {app_id}")
    exit_now(follow(app_id, read_key, timeout))


@credit_app.command("show")
def show_application(
    application_id: str,
    follow_it: bool = typer.Option(False, "--follow", help="Show progress until it settles."),
    timeout: float = typer.Option(120.0, help="Seconds to follow before giving up."),
    api_key: str = READ_KEY,
) -> None:
    """Show an application: state, each child's result, the decision and its reasons."""
    if follow_it:
        exit_now(follow(application_id, api_key, timeout))
    show(api_call("GET", f"/v1/credit-applications/{application_id}", api_key))


@credit_app.command("review")
def review(
    application_id: str,
    decision: str = typer.Option(..., help="approve, decline or request_info."),
    note: str = typer.Option("", help="For request_info: what the applicant should send."),
    approved_amount: str | None = typer.Option(None, help="Approve a lower amount."),
    api_key: str = typer.Option(
        "local-reviewer-1-key",
        envvar="FIFLOW_STAFF_KEY",
        help="Your own staff key: the review is recorded under its person.",
    ),
) -> None:
    """Decide a referred application, as a bank manager (the one whose staff key this is)."""
    body: dict[str, Any] = {"decision": decision, "note": note}
    if approved_amount is not None:
        body["approved_amount"] = approved_amount
    show(api_call("POST", f"/v1/credit-applications/{application_id}/review", api_key, body))


@credit_app.command("report")
def report(
    application_id: str,
    api_key: str = typer.Option("local-reviewer-key", envvar="FIFLOW_API_KEY"),
) -> None:
    """Print the stored results report of a finished application."""
    show(api_call("GET", f"/v1/reports/credit-applications/{application_id}", api_key))
