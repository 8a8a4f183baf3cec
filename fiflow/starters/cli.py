"""The `fiflow` command: run the parts, start and inspect work, check rule files."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import typer

from fiflow.integrations.settings import Settings
from fiflow.starters.cli_support import api_call, exit_now, fail, show
from fiflow.starters.credit_cli import credit_app

app = typer.Typer(help="fiflow: FI customer processes on Temporal.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
alerts_app = typer.Typer(help="Fraud alerts (through the HTTP API).", no_args_is_help=True)
rules_app = typer.Typer(help="Rule files.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(alerts_app, name="alerts")
app.add_typer(rules_app, name="rules")
app.add_typer(credit_app, name="credit")


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        fail(f"configuration error: {exc}")


@app.command()
def up(
    workers: int = typer.Option(2, min=0, max=32, help="Worker processes."),
    temporal_port: int = typer.Option(7233, help="Temporal gRPC port."),
    ui_port: int = typer.Option(8233, help="Temporal Web UI port."),
    sandbox_port: int = typer.Option(8100, help="Sandbox port."),
    api_port: int = typer.Option(8000, help="API port."),
    state_dir: Path = typer.Option(
        Path(".fiflow"), help="Where Temporal's and fiflow's data live."
    ),
) -> None:
    """Run Temporal (with Web UI), the sandbox, the API and workers until Ctrl-C."""
    from fiflow.starters.stack import Ports, run_stack

    ports = Ports(temporal=temporal_port, ui=ui_port, sandbox=sandbox_port, api=api_port)
    raise typer.Exit(run_stack(_settings(), ports, workers, state_dir))


@app.command()
def worker() -> None:
    """Run one worker process (Temporal connection from TEMPORAL_* env vars)."""
    from fiflow.workers.main import run_worker

    settings = _settings()
    try:
        asyncio.run(run_worker(settings))
    except RuntimeError as exc:  # connection refused, bad TLS config...
        fail(f"worker failed: {exc}", 1)
    exit_now(0)


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", help="Listen address."),
    port: int = typer.Option(8000, help="Listen port."),
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from fiflow.integrations import telemetry
    from fiflow.starters.api.app import create_app

    settings = _settings()
    telemetry.setup("api", settings)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    exit_now(0)


@app.command()
def sandbox() -> None:
    """Run the simulated back office (SANDBOX_* env vars)."""
    from fiflow.sandbox.__main__ import main as sandbox_main

    sandbox_main()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (FIFLOW_DATABASE_URL)."""
    from fiflow.integrations.database import current_revision, upgrade_database

    settings = _settings()
    try:
        upgrade_database(settings.database_url)
        typer.echo(f"database at revision {current_revision(settings.database_url)}")
    except Exception as exc:  # noqa: BLE001 - any driver error becomes a message
        fail(f"database upgrade failed: {type(exc).__name__}: {exc}", 1)
    exit_now(0)


@rules_app.command("check")
def rules_check(
    path: Path = typer.Argument(..., help="An alert, credit or trigger rule file (YAML or JSON)."),
) -> None:
    """Validate a rule file; prints its version or the problems found."""
    from fiflow.domain.credit_rules import CreditRuleSet
    from fiflow.domain.rules import AlertRuleSet, RuleSetError
    from fiflow.integrations.rules_store import read_rules_file

    try:
        rules = read_rules_file(path)
    except RuleSetError as exc:
        fail(str(exc), 1)
    if isinstance(rules, AlertRuleSet):
        kinds = f"alert types: {', '.join(sorted(rules.alert_types))}"
    elif isinstance(rules, CreditRuleSet):
        kinds = f"products: {', '.join(sorted(p.value for p in rules.products))}"
    else:
        kinds = f"triggers: {', '.join(t.id for t in rules.triggers)}"
    typer.echo(f"{path}: valid {rules.name} rules, version {rules.version}, {kinds}")
    exit_now(0)


@alerts_app.command("send")
def alerts_send(
    customer_id: str = typer.Option(..., help="CRM customer ID, e.g. cust-0001."),
    amount: str = typer.Option(..., help="Transaction amount, e.g. 912.00."),
    merchant: str = typer.Option(..., help="Merchant name."),
    card_last4: str = typer.Option(..., help="Last four digits of the card."),
    currency: str = typer.Option("USD"),
    alert_type: str = typer.Option("card_fraud_suspected"),
    source_event_id: str = typer.Option("", help="Defaults to a new unique ID."),
    api_key: str = typer.Option("local-system-key", envvar="FIFLOW_API_KEY"),
) -> None:
    """Post an alert, as the FI's alerting system would."""
    body = {
        "source_event_id": source_event_id or f"cli-{uuid.uuid4().hex[:16]}",
        "customer_id": customer_id,
        "alert_type": alert_type,
        "transaction": {
            "amount": amount,
            "currency": currency,
            "merchant": merchant,
            "occurred_at": datetime.now(UTC).isoformat(),
            "card_last4": card_last4,
        },
    }
    show(api_call("POST", "/v1/alerts", api_key, body))


@alerts_app.command("show")
def alerts_show(
    alert_id: str,
    api_key: str = typer.Option("local-system-key", envvar="FIFLOW_API_KEY"),
) -> None:
    """Show an alert's state, reply, decision and actions."""
    show(api_call("GET", f"/v1/alerts/{alert_id}", api_key))


def main() -> None:
    """Entry point of the `fiflow` script."""
    app()


if __name__ == "__main__":
    main()
