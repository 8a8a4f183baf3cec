"""`fiflow feed`: the real-time transaction feed (NATS JetStream); without a subcommand, run
one stream consumer process."""

from __future__ import annotations

import asyncio

import typer

from fiflow.starters.cli_support import exit_now, fail
from fiflow.starters.feed_batch_cli import batch_command

feed_app = typer.Typer(help="The real-time transaction feed (NATS JetStream).")


@feed_app.callback(invoke_without_command=True)
def feed(
    ctx: typer.Context,
    index: int | None = typer.Option(
        None,
        "--index",
        min=0,
        help="This process's number, 0 to --of minus 1 (default FIFLOW_FEED_CONSUMER_INDEX, 0).",
    ),
    of: int | None = typer.Option(
        None,
        "--of",
        min=1,
        help="How many consumer processes share the partitions (FIFLOW_FEED_CONSUMER_COUNT, 1).",
    ),
) -> None:
    """Run one stream consumer process (NATS from FIFLOW_NATS_*, Temporal from TEMPORAL_*).

    Transactions are partitioned by customer; process --index i of --of N reads the
    partitions p with p % N == i (so one process judges a customer's transactions, in
    order), and every process also reads the plain legacy subject. Start N with distinct
    indexes to screen faster.
    """
    if ctx.invoked_subcommand is not None:
        return
    # The CLI's own settings checks; imported here because cli.py imports this module.
    from fiflow.starters.cli import _checked, _settings
    from fiflow.workers.feed_consumer import run_consumer

    settings = _settings()
    changes = {"feed_consumer_index": index, "feed_consumer_count": of}
    settings = settings.model_copy(update={k: v for k, v in changes.items() if v is not None})
    if settings.feed_consumer_index >= settings.feed_consumer_count:
        fail(
            f"--index {settings.feed_consumer_index} must be below --of "
            f"{settings.feed_consumer_count}",
            2,
        )
    _checked(settings)
    try:
        asyncio.run(run_consumer(settings))
    except RuntimeError as exc:  # NATS or Temporal unreachable, bad TLS config...
        fail(f"feed consumer failed: {exc}", 1)
    exit_now(0)


feed_app.command("batch")(batch_command)
