"""The `fiflow` command: run the parts, start and inspect work, check rule files."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import typer
from pydantic import ValidationError

from fiflow.integrations.settings import Settings
from fiflow.starters.cli_support import api_call, exit_now, fail, show
from fiflow.starters.credit_cli import credit_app
from fiflow.starters.feed_cli import feed_app
from fiflow.starters.rules_cli import register_rules_commands
from fiflow.starters.staff_cli import metrics_app, register_alert_commands, review_app
from fiflow.starters.temporal_setup import temporal_app

app = typer.Typer(help="fiflow: FI customer processes on Temporal.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
alerts_app = typer.Typer(help="Fraud alerts (through the HTTP API).", no_args_is_help=True)
rules_app = typer.Typer(help="Rule files and rule set versions.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(alerts_app, name="alerts")
app.add_typer(rules_app, name="rules")
app.add_typer(credit_app, name="credit")
app.add_typer(feed_app, name="feed")
schedules_app = typer.Typer(help="Scheduled jobs (Temporal Schedules).", no_args_is_help=True)
app.add_typer(schedules_app, name="schedules")
app.add_typer(temporal_app, name="temporal")
app.add_typer(review_app, name="review")
app.add_typer(metrics_app, name="metrics")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # Never the input: a malformed secret must not be printed back.
        problems = "; ".join(
            f"FIFLOW_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}"
            for e in exc.errors(include_input=False)
        )
        fail(f"configuration error: {problems}")
    except ValueError as exc:
        fail(f"configuration error: {exc}")


def _checked(settings: Settings, *, bind_host: str | None = None, codec: bool = False) -> None:
    """Refuse to run a part with local secrets in production, or without a usable payload key."""
    from fiflow.integrations.codec import KeyRingError
    from fiflow.integrations.production import production_refusal
    from fiflow.integrations.temporal import payload_codec

    refusal = production_refusal(settings, bind_host=bind_host, codec_server=codec)
    if refusal:
        fail(refusal)
    try:
        payload_codec(settings)
    except KeyRingError as exc:
        fail(f"configuration error: {exc}")


@app.command()
def up(
    workers: int = typer.Option(2, min=0, max=32, help="Worker processes."),
    feed_consumers: int = typer.Option(
        1, min=0, max=32, help="Stream consumer processes (`fiflow feed`)."
    ),
    temporal_port: int = typer.Option(7233, help="Temporal gRPC port."),
    ui_port: int = typer.Option(8233, help="Temporal Web UI port."),
    sandbox_port: int = typer.Option(8100, help="Sandbox port."),
    api_port: int = typer.Option(8000, help="API port."),
    codec_port: int = typer.Option(8089, help="Codec server port (decodes for the Web UI)."),
    nats_port: int = typer.Option(4222, help="NATS (JetStream) port: the transaction stream."),
    metrics_port: int = typer.Option(
        9464, help="Prometheus metrics: the API on this port, worker N on port+N; 0 for none."
    ),
    state_dir: Path = typer.Option(
        Path(".fiflow"), help="Where Temporal's and fiflow's data live."
    ),
) -> None:
    """Run Temporal (with Web UI), NATS, the sandbox, the API, workers and feed consumers until
    Ctrl-C."""
    from fiflow.starters.stack import Ports, run_stack

    ports = Ports(
        temporal=temporal_port,
        ui=ui_port,
        sandbox=sandbox_port,
        api=api_port,
        codec=codec_port,
        nats=nats_port,
        metrics=metrics_port,
    )
    code = run_stack(_settings(), ports, workers, state_dir, feed_consumers)
    # Every part is stopped and the output flushed: skip the interpreter's teardown, part of
    # the stop time (and a startup job's daemon thread cannot trip it).
    exit_now(code)


@app.command()
def status(
    state_dir: Path = typer.Option(Path(".fiflow"), help="The state directory of `fiflow up`."),
) -> None:
    """Show each part of a running `fiflow up`: pid, uptime, restarts. Exit 1 if none runs."""
    import time

    from fiflow.starters.supervisor import read_status

    running = read_status(state_dir)
    if running is None:
        fail(f"no fiflow up is running with state in {state_dir}", 1)
    typer.echo(f"fiflow up (pid {running['pid']}, state in {state_dir})")
    typer.echo(f"  {'part':<10} {'pid':>8} {'uptime':>10} {'restarts':>8}  state")
    for part in running["parts"]:
        uptime = int(time.time() - part["started_at"])
        shown = f"{uptime // 3600}h{uptime % 3600 // 60:02d}m{uptime % 60:02d}s"
        if part["state"] == "stopped":  # read_status found its process gone
            shown = "-"
        typer.echo(
            f"  {part['name']:<10} {part['pid'] or '-':>8} {shown:>10} "
            f"{part['restarts']:>8}  {part['state']}"
        )
    exit_now(0)


@app.command()
def worker() -> None:
    """Run one worker process (Temporal connection from TEMPORAL_* env vars)."""
    from fiflow.workers.main import run_worker

    settings = _settings()
    _checked(settings)
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
    _checked(settings, bind_host=host)
    telemetry.setup("api", settings)
    app = create_app(settings)
    telemetry.instrument_api(app)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    exit_now(0)


@app.command("codec-server")
def codec_server(
    host: str = typer.Option("127.0.0.1", help="Listen address."),
    port: int = typer.Option(8089, help="Listen port."),
) -> None:
    """Run the codec server that decodes payloads for the Temporal Web UI (needs a credential)."""
    import uvicorn

    from fiflow.integrations import telemetry
    from fiflow.integrations.codec_auth import CodecAuth
    from fiflow.integrations.temporal import payload_codec
    from fiflow.starters.codec_server import create_codec_app

    settings = _settings()
    _checked(settings, bind_host=host, codec=True)
    codec = payload_codec(settings)
    if codec is None:
        fail("payload encryption is off (FIFLOW_PAYLOAD_ENCRYPTION=false): nothing to decode")
    auth = CodecAuth(settings)
    if not auth.configured:
        fail("the codec server needs FIFLOW_CODEC_TOKEN or FIFLOW_CODEC_OIDC_ISSUER")
    telemetry.setup("codec", settings)
    origins = [o.strip() for o in settings.codec_cors_origins.split(",") if o.strip()]
    uvicorn.run(
        create_codec_app(codec, auth, origins),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,  # paths can carry the shared token
    )
    exit_now(0)


@app.command()
def sandbox() -> None:
    """Run the simulated back office (SANDBOX_* env vars)."""
    try:
        from fiflow.sandbox.__main__ import main as sandbox_main
    except ModuleNotFoundError as exc:
        if exc.name not in ("fiflow.sandbox", "fiflow.sandbox.__main__"):
            raise
        fail(
            "the sandbox is not installed here (a production image leaves it out); run it "
            "from a source checkout (`make up`) or an image built with INCLUDE_SANDBOX=true",
            1,
        )

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


@db_app.command("purge-ledger")
def db_purge_ledger() -> None:
    """Forget inbound SMS MessageSids older than FIFLOW_SMS_LEDGER_RETENTION_DAYS."""
    # Run by hand or from cron for now; a scheduled job comes with its own issue.
    from datetime import timedelta

    from fiflow.integrations.database import create_db_engine
    from fiflow.integrations.message_ledger import MessageLedger

    settings = _settings()
    cutoff = datetime.now(UTC) - timedelta(days=settings.sms_ledger_retention_days)
    engine = create_db_engine(settings.database_url)
    try:
        purged = MessageLedger(engine).purge(cutoff)
    except Exception as exc:  # noqa: BLE001 - any driver error becomes a message
        fail(f"ledger purge failed: {type(exc).__name__}: {exc}", 1)
    finally:
        engine.dispose()
    typer.echo(f"purged {purged} ledger entries older than {cutoff.isoformat()}")
    exit_now(0)


@rules_app.command("check")
def rules_check(
    path: Path = typer.Argument(..., help="A rule file of any kind (YAML or JSON)."),
) -> None:
    """Validate a rule file; prints its version or the problems found."""
    from fiflow.domain.credit_rules import CreditRuleSet
    from fiflow.domain.feeds.conditions import ConditionRuleSet
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
    elif isinstance(rules, ConditionRuleSet):
        kinds = f"conditions: {', '.join(c.id for c in rules.conditions)}"
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


@schedules_app.command("apply")
def schedules_apply() -> None:
    """Create fiflow's schedules, or update them (a paused one stays paused). Idempotent."""
    from temporalio.service import RPCError

    from fiflow.integrations.temporal import connect
    from fiflow.starters.schedules import apply_schedules

    settings = _settings()
    _checked(settings)

    async def apply() -> None:
        client = await connect(settings)
        for applied in await apply_schedules(client, settings):
            typer.echo(f"{applied.schedule_id}: {applied.outcome}")

    try:
        asyncio.run(apply())
    except (RuntimeError, RPCError) as exc:  # Temporal unreachable, bad TLS config...
        fail(f"applying schedules failed: {exc}", 1)
    exit_now(0)


# After `send`: `list` and `show` (staff_cli), `list`, `diff`, `activate` (rules_cli).
register_alert_commands(alerts_app)
register_rules_commands(rules_app)


def main() -> None:
    """Entry point of the `fiflow` script."""
    app()


if __name__ == "__main__":
    main()
