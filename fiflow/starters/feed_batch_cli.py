"""`fiflow feed batch FILE`: upload a transaction file through the HTTP API and follow its
screening with a progress bar (chunks screened, then alerts started)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fiflow.starters.cli_support import API_URL, api_call, exit_now, fail, show

CONTENT_TYPES = {".csv": "text/csv", ".parquet": "application/vnd.apache.parquet"}
FINISHED = ("completed", "failed")
RESULT_FIELDS = ("rows_read", "rows_rejected", "rows_matched", "alerts_planned", "alerts_started")


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        yield from iter(lambda: f.read(1 << 20), b"")


def upload(path: Path, source: str, key: str) -> httpx.Response:
    """POST the file (streamed) to /v1/feeds/batches."""
    content_type = CONTENT_TYPES.get(path.suffix.lower())
    if content_type is None:
        fail(f"{path.name}: a batch file is .csv or .parquet", 2)
    try:
        return httpx.post(
            f"{API_URL}/v1/feeds/batches",
            params={"source": source},
            content=_chunks(path),
            headers={"X-API-Key": key, "Content-Type": content_type},
            timeout=httpx.Timeout(10, write=600, read=120),
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach the API at {API_URL}: {exc}", 1)


def follow(status_url: str, key: str, timeout: float, console: Console) -> dict[str, Any]:
    """Poll the batch until it finishes, drawing its progress; returns the last view."""
    deadline = time.monotonic() + timeout
    columns = (
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        chunks = progress.add_task("screening", total=None)
        alerts = progress.add_task("alerting", total=None, visible=False)
        while True:
            response = api_call("GET", status_url, key)
            if not response.is_success:
                show(response)
            view: dict[str, Any] = response.json()
            progress.update(chunks, total=view["chunks_total"], completed=view["chunks_done"])
            if view["state"] in ("alerting", "completed"):
                progress.update(
                    alerts,
                    visible=True,
                    total=view["alerts_planned"],
                    completed=view["alerts_started"],
                )
            if view["state"] in FINISHED:
                return view
            if time.monotonic() > deadline:
                fail(f"batch still {view['state']} after {timeout:.0f}s; follow {status_url}", 1)
            time.sleep(0.5)


def batch_command(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="A .csv or .parquet file."
    ),
    source: str = typer.Option(
        "default", help="The file's source: its column mapping in feed_sources.yaml."
    ),
    wait: bool = typer.Option(
        True, "--wait/--no-wait", help="Follow the batch until it is done (a progress bar)."
    ),
    timeout: float = typer.Option(3600.0, min=1, help="How long to follow, in seconds."),
    api_key: str = typer.Option("local-system-key", envvar="FIFLOW_API_KEY"),
) -> None:
    """Screen a settlement/transaction file; the same file twice is one batch."""
    response = upload(file, source, api_key)
    if not response.is_success:
        show(response)
    accepted = response.json()
    console = Console(stderr=True)
    note = " (the same file came before: one batch)" if accepted["duplicate"] else ""
    console.print(f"batch {accepted['batch_id']}{note}")
    if not wait:
        typer.echo(json.dumps(accepted, indent=2))
        exit_now(0)
    view = follow(accepted["status_url"], api_key, timeout, console)
    result = {"batch_id": view["batch_id"], "state": view["state"]}
    result.update({k: view[k] for k in RESULT_FIELDS})
    if view.get("error"):
        result["error"] = view["error"]
    if view["rejected_rows"]:
        result["rejected_rows"] = view["rejected_rows"]
    typer.echo(json.dumps(result, indent=2))
    exit_now(0 if view["state"] == "completed" else 1)
