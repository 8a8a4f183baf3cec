"""The card system's feeds: transaction and settlement files, and a live stream to NATS.

`POST /__sandbox/feeds/files` writes a CSV or Parquet file of generated transactions (or a
settlement file of balances) and says which transactions should alert. `POST
/__sandbox/feeds/stream` publishes generated transactions to the JetStream subject the FI's
core would use, at a given rate for a given time; `GET /__sandbox/feeds/stream/{run_id}`
follows the run (what was published and acknowledged, and when each alerting one was).
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import polars as pl
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from fiflow.sandbox.errors import SandboxError
from fiflow.sandbox.state import SandboxState, get_state
from fiflow.sandbox.transaction_feed import (
    FeedMix,
    cards_frame,
    generate_balances,
    generate_transactions,
    to_ndjson_lines,
)

router = APIRouter(prefix="/__sandbox/feeds", tags=["sandbox"])

# Alerting ids a response lists in full (the count is always exact).
LISTED_ALERTS = 1000
# Publishes in flight at once on a stream run.
PUBLISH_WINDOW = 256


class MixFields(BaseModel):
    """The shares of generated rows (fractions of all rows)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(default=7, ge=0, le=2**31)
    alert_share: float = Field(default=0.01, ge=0, le=1)
    decline_share: float = Field(default=0.03, ge=0, le=1)
    card_not_present_share: float = Field(default=0.25, ge=0, le=1)
    international_share: float = Field(default=0.05, ge=0, le=1)
    start: datetime | None = Field(default=None, description="First transaction time (UTC).")
    span_hours: float = Field(default=24, gt=0, le=24 * 366)
    customers: list[str] | None = Field(
        default=None, min_length=1, max_length=10_000, description="Only these customers' cards."
    )

    def mix(self) -> FeedMix:
        return FeedMix(
            alert_share=self.alert_share,
            decline_share=self.decline_share,
            card_not_present_share=self.card_not_present_share,
            international_share=self.international_share,
        )


class FileRequest(MixFields):
    """What file to write."""

    kind: Literal["transactions", "settlement"] = "transactions"
    format: Literal["csv", "parquet"] = "csv"
    rows: int = Field(default=1000, ge=1, le=20_000_000)


class FileWritten(BaseModel):
    """The file and what it holds."""

    path: str
    kind: str
    format: str
    rows: int
    sha256: str
    alerting: int
    alerting_ids: list[str]


class StreamRequest(MixFields):
    """What to publish, how fast and for how long."""

    rate: float = Field(default=100, gt=0, le=50_000, description="Transactions per second.")
    seconds: float = Field(default=10, gt=0, le=3600)
    subject: str = Field(default="fiflow.transactions.card", pattern=r"^[A-Za-z0-9_.>*-]+$")
    # Like the FI's core, the generator publishes each customer's transactions to their
    # partition (`<subject>.<p>`, fiflow's documented hash), so fiflow keeps their order
    # across consumer processes. 0 publishes to the plain (legacy, unordered) subject.
    partitions: int = Field(default=32, ge=0, le=4096)


class StreamRun(BaseModel):
    """A stream run's progress."""

    run_id: str
    state: Literal["running", "done", "failed"] = "running"
    planned: int
    published: int = 0
    failed: int = 0
    error: str | None = None
    started_at: float
    finished_at: float | None = None
    # transaction_id -> (customer_id, unix time its publish was acknowledged)
    alerting: dict[str, tuple[str, float]] = Field(default_factory=dict)


_runs: dict[str, StreamRun] = {}
_tasks: set[asyncio.Task[None]] = set()


def _feeds_dir(state: SandboxState) -> Path:
    configured = state.config.feeds_dir
    path = Path(configured) if configured else Path(tempfile.gettempdir()) / "fiflow-sandbox"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _transactions(
    state: SandboxState, req: MixFields, rows: int, start: datetime | None = None
) -> pl.DataFrame:
    customers = state.directory.customers
    if req.customers is not None:
        unknown = sorted(set(req.customers) - {c.customer_id for c in customers})
        if unknown:
            raise SandboxError(422, "unknown_customer", f"no customer {unknown[0]}")
        customers = [c for c in customers if c.customer_id in set(req.customers)]
    return generate_transactions(
        cards_frame(customers),
        rows,
        seed=req.seed,
        start=req.start or start,
        span=timedelta(hours=req.span_hours),
        mix=req.mix(),
    )


def _write(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "csv":
        frame.with_columns(
            pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            for c, t in frame.schema.items()
            if isinstance(t, pl.Datetime)
        ).write_csv(path)
    else:
        frame.write_parquet(path)


@router.post("/files")
async def write_file(req: FileRequest, state: SandboxState = Depends(get_state)) -> FileWritten:
    """Write a generated file; the same request always writes the same bytes."""

    def build() -> FileWritten:
        if req.kind == "settlement":
            frame = generate_balances(state.directory.customers, seed=req.seed, as_of=req.start)
            alerting: list[str] = []
        else:
            generated = _transactions(state, req, req.rows)
            alerting = generated.filter("alerts")["transaction_id"].to_list()
            frame = generated.drop("alerts")
        name = f"{req.kind}-{req.seed}-{frame.height}-{uuid.uuid4().hex[:8]}.{req.format}"
        path = _feeds_dir(state) / name
        _write(frame, path, req.format)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return FileWritten(
            path=str(path),
            kind=req.kind,
            format=req.format,
            rows=frame.height,
            sha256=digest,
            alerting=len(alerting),
            alerting_ids=alerting[:LISTED_ALERTS],
        )

    return await asyncio.to_thread(build)


def partition_subject(subject: str, customer_id: str, partitions: int) -> str:
    """The subject of the customer's partition, computed as the FI's core would from the
    documented rule (README, "The stream"): the first 4 bytes of SHA-256 of the customer id,
    big-endian, modulo the partition count. The sandbox imports no fiflow code, so it
    computes this itself; tests check it agrees with fiflow's."""
    if partitions == 0:
        return subject
    digest = hashlib.sha256(customer_id.encode()).digest()
    return f"{subject}.{int.from_bytes(digest[:4], 'big') % partitions}"


async def _publish(state: SandboxState, run: StreamRun, req: StreamRequest) -> None:
    """Publish the run's transactions at its rate; JetStream dedups by transaction id."""
    import nats  # the stream is optional for the sandbox: imported only when used

    # Live transactions happen now: by default the run's simulated span ends at its start.
    began_at = datetime.now(UTC) - timedelta(hours=req.span_hours)
    frame = await asyncio.to_thread(_transactions, state, req, run.planned, began_at)
    lines = to_ndjson_lines(frame)
    ids = frame["transaction_id"].to_list()
    customers = frame["customer_id"].to_list()
    alerts = frame["alerts"].to_list()
    nc = await nats.connect(state.config.nats_url, connect_timeout=5, max_reconnect_attempts=5)
    try:
        js = nc.jetstream()
        window = asyncio.Semaphore(PUBLISH_WINDOW)
        began = time.monotonic()

        async def one(i: int) -> None:
            try:
                subject = partition_subject(req.subject, customers[i], req.partitions)
                await js.publish(subject, lines[i], headers={"Nats-Msg-Id": ids[i]}, timeout=10)
            except Exception:  # noqa: BLE001 - counted; the run goes on
                run.failed += 1
            else:
                run.published += 1
                if alerts[i]:
                    run.alerting[ids[i]] = (customers[i], time.time())
            finally:
                window.release()

        pending: list[asyncio.Task[None]] = []
        for i in range(len(lines)):
            # Paced: transaction i goes out no earlier than i / rate seconds after the start.
            delay = i / req.rate - (time.monotonic() - began)
            if delay > 0:
                await asyncio.sleep(delay)
            await window.acquire()
            pending.append(asyncio.create_task(one(i)))
        await asyncio.gather(*pending)
        run.state = "done"
    finally:
        await nc.drain()


@router.post("/stream", status_code=202)
async def start_stream(req: StreamRequest, state: SandboxState = Depends(get_state)) -> StreamRun:
    """Start publishing; the run continues in the background."""
    planned = max(1, int(req.rate * req.seconds))
    if planned > 2_000_000:
        raise SandboxError(422, "too_many", "rate x seconds must stay within 2,000,000")
    if req.customers is not None:
        known = {c.customer_id for c in state.directory.customers}
        unknown = sorted(set(req.customers) - known)
        if unknown:
            raise SandboxError(422, "unknown_customer", f"no customer {unknown[0]}")
    run = StreamRun(run_id=uuid.uuid4().hex[:12], planned=planned, started_at=time.time())
    _runs[run.run_id] = run

    async def go() -> None:
        try:
            await _publish(state, run, req)
        except Exception as exc:  # noqa: BLE001 - reported on the run
            run.state = "failed"
            run.error = f"{type(exc).__name__}: {exc}"
        finally:
            run.finished_at = time.time()

    task = asyncio.create_task(go())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return run


@router.get("/stream/{run_id}")
async def stream_run(run_id: str) -> dict[str, Any]:
    """A run's progress and the alerting transactions published so far."""
    run = _runs.get(run_id)
    if run is None:
        raise SandboxError(404, "not_found", f"no stream run {run_id}")
    body = run.model_dump(mode="json", exclude={"alerting"})
    body["alerting"] = [
        {"transaction_id": t, "customer_id": c, "published_at": at}
        for t, (c, at) in run.alerting.items()
    ]
    body["now"] = datetime.now(UTC).isoformat()
    return body
