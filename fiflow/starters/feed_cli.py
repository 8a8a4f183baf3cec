"""`fiflow feed`: the real-time transaction feed (NATS JetStream); without a subcommand, run
one stream consumer process."""

from __future__ import annotations

import asyncio

import typer

from fiflow.starters.cli_support import exit_now, fail
from fiflow.starters.feed_batch_cli import batch_command

feed_app = typer.Typer(help="The real-time transaction feed (NATS JetStream).")


@feed_app.callback(invoke_without_command=True)
def feed(ctx: typer.Context) -> None:
    """Run one stream consumer process (NATS from FIFLOW_NATS_*, Temporal from TEMPORAL_*).

    Every consumer process shares one durable consumer: start more to screen faster.
    """
    if ctx.invoked_subcommand is not None:
        return
    # The CLI's own settings checks; imported here because cli.py imports this module.
    from fiflow.starters.cli import _checked, _settings
    from fiflow.workers.feed_consumer import run_consumer

    settings = _settings()
    _checked(settings)
    try:
        asyncio.run(run_consumer(settings))
    except RuntimeError as exc:  # NATS or Temporal unreachable, bad TLS config...
        fail(f"feed consumer failed: {exc}", 1)
    exit_now(0)


feed_app.command("batch")(batch_command)
