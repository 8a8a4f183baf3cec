"""Batch screening activities: prepare a stored file, screen one chunk, start alerts at a
bounded rate, finish; and the inbox sweep that takes files in.

Between these steps only ids and counts travel through Temporal: the rows live in the store's
file and chunk files, the matches and planned alerts in the database. Every step is
idempotent (see fiflow.integrations.batch_store), so a worker killed anywhere resumes on
another worker without a second alert. Polars work runs in a thread while the activity
heartbeats, so a worker that dies mid-chunk is noticed within the heartbeat timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from fiflow.domain.alerts import AlertRequest
from fiflow.domain.feeds.batches import (
    BatchResult,
    DigestRules,
    SweepInbox,
    SweepResult,
    customer_alerts,
)
from fiflow.domain.feeds.conditions import (
    CompiledRules,
    ConditionRuleSet,
    parse_condition_rule_set,
)
from fiflow.domain.feeds.matches import (
    Match,
    NoticeRequest,
    Origin,
    balance_event_id,
    balance_notice,
    condition_match,
)
from fiflow.domain.feeds.preferences import effective
from fiflow.domain.feeds.transactions import Transaction
from fiflow.domain.rules import RuleSetError
from fiflow.integrations.alert_starts import start_fraud_alert, start_notice
from fiflow.integrations.batch_files import (
    BatchFileError,
    FeedSources,
    FileFormat,
    SourceKind,
    chunk_count,
    format_of,
    load_feed_sources,
    read_batch_file,
    read_chunk,
    remove_work,
    store_file,
    stored_path,
    write_chunks,
)
from fiflow.integrations.batch_intake import accept
from fiflow.integrations.batch_store import (
    AlertKind,
    BatchRecord,
    BatchState,
    BatchStore,
    MatchRow,
    PlannedAlert,
    Reject,
)
from fiflow.integrations.preferences_store import PreferenceStore
from fiflow.integrations.rules_store import RuleStore
from fiflow.integrations.screening import (
    preference_match,
    preference_matches_by_transaction,
    preferences_frame,
    screen,
    screen_balances,
    screen_preferences,
)
from fiflow.integrations.settings import Settings

log = logging.getLogger("fiflow.batch")
T = TypeVar("T")


class PrepareBatch(BaseModel):
    """Read and split a registered batch's file."""

    batch_id: str


class BatchPlan(BaseModel):
    """The file read: how many chunks to screen, the row counts, or why it cannot be read."""

    chunks: int = 0
    rows_read: int = 0
    rows_rejected: int = 0
    rules_version: str | None = None
    error: str | None = None


class ScreenChunk(BaseModel):
    """Screen one chunk of a batch."""

    batch_id: str
    chunk: int


class ChunkResult(BaseModel):
    """What one chunk found."""

    rows: int
    matched: int
    alerts: int


class StartAlerts(BaseModel):
    """Start up to `limit` of the batch's planned alerts, at most `per_second`."""

    batch_id: str
    per_second: float
    limit: int


class AlertsPage(BaseModel):
    """How many this call started, and how many are left."""

    started: int
    remaining: int


class FinishBatch(BaseModel):
    """Close a batch whose alerts are all started."""

    batch_id: str


@contextlib.asynccontextmanager
async def _heartbeating(every: float = 2.0) -> AsyncIterator[None]:
    """Heartbeat while a thread works, so a dead worker is noticed by its heartbeat timeout."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    async with _heartbeating():
        return await asyncio.to_thread(fn, *args)


def _condition_matches(rules: CompiledRules, pairs: pl.DataFrame) -> dict[str, list[Match]]:
    """screen()'s (transaction_id, condition_id) rows as each transaction's Matches."""
    conditions = {c.id: (n, c) for n, (c, _) in enumerate(rules.conditions)}
    found: dict[str, list[tuple[int, Match]]] = {}
    for txn_id, condition_id in pairs.iter_rows():
        n, c = conditions[condition_id]
        found.setdefault(txn_id, []).append((n, condition_match(c)))
    return {t: [m for _, m in sorted(ms, key=lambda x: x[0])] for t, ms in found.items()}


def _transactions(frame: pl.DataFrame, ids: Iterable[str]) -> list[Transaction]:
    """The matched rows as Transactions (a few rows: the matched ones only)."""
    rows = frame.filter(pl.col("transaction_id").is_in(list(ids))).drop("line")
    return [
        Transaction.model_validate({**row, "amount": Decimal(row["amount"])})
        for row in rows.iter_rows(named=True)
    ]


def plan_chunk(
    batch_id: str,
    frame: pl.DataFrame,
    rules: CompiledRules,
    digest: DigestRules,
    extra: dict[str, list[Match]] | None = None,
) -> tuple[list[MatchRow], list[PlannedAlert]]:
    """Screen a chunk and plan its alerts: fraud alerts one each, a digest per customer."""
    by_txn = _condition_matches(rules, screen(frame, rules))
    for txn_id, more in (extra or {}).items():
        by_txn.setdefault(txn_id, []).extend(more)
    by_customer: dict[str, list[tuple[Transaction, list[Match]]]] = {}
    for txn in _transactions(frame, by_txn):
        by_customer.setdefault(txn.customer_id, []).append((txn, by_txn[txn.transaction_id]))
    matches: list[MatchRow] = []
    alerts: list[PlannedAlert] = []
    for customer_id, matched in sorted(by_customer.items()):
        planned = customer_alerts(batch_id, matched, digest)
        for txn, txn_matches in matched:
            matches.append(
                MatchRow(
                    transaction_id=txn.transaction_id,
                    customer_id=customer_id,
                    rule_ids=[m.rule_id for m in txn_matches],
                    alert_key=planned.told_by.get(txn.transaction_id),
                )
            )
        for fraud in planned.fraud_alerts:
            alerts.append(
                PlannedAlert(
                    alert_key=fraud.source_event_id,
                    customer_id=customer_id,
                    kind=AlertKind.FRAUD_ALERT,
                    items=1,
                    request=fraud.model_dump(mode="json"),
                )
            )
        for notice in planned.notices:
            alerts.append(
                PlannedAlert(
                    alert_key=notice.source_event_id,
                    customer_id=customer_id,
                    kind=AlertKind.NOTICE,
                    items=len(notice.items),
                    request=notice.model_dump(mode="json"),
                )
            )
    return matches, alerts


def plan_balances(
    frame: pl.DataFrame, preferences: pl.DataFrame, key: str
) -> tuple[list[MatchRow], list[PlannedAlert]]:
    """Screen a chunk of balance records against balance_below: one notice per record below.

    Never a digest: each notice is keyed by the customer, account and as_of
    (`balance_event_id`), so the same balance in a second file is the same notice, one text.
    """
    found = screen_balances(frame.drop("line", strict=False), preferences)
    if found.is_empty():
        return [], []
    records = frame.select("customer_id", "account_id", "as_of", "balance", "currency")
    thresholds = preferences.filter(pl.col("kind") == "balance_below").select(
        "customer_id", "p_amount"
    )
    rows = found.join(records, on=["customer_id", "account_id", "as_of"], how="left").join(
        thresholds, on="customer_id", how="left"
    )
    matches: list[MatchRow] = []
    alerts: list[PlannedAlert] = []
    for row in rows.iter_rows(named=True):
        event_id = balance_event_id(key, row["customer_id"], row["account_id"], row["as_of"])
        match = preference_match(row)
        notice = balance_notice(
            event_id=event_id,
            customer_id=row["customer_id"],
            account_id=row["account_id"],
            balance=Decimal(row["balance"]),
            currency=row["currency"],
            as_of=row["as_of"],
            threshold=Decimal(row["p_amount"]).scaleb(-4).normalize(),
            matches=[match],
            origin=Origin.BATCH,
        )
        assert notice is not None
        matches.append(
            MatchRow(
                transaction_id=event_id,
                customer_id=row["customer_id"],
                rule_ids=[match.rule_id],
                alert_key=event_id,
            )
        )
        alerts.append(
            PlannedAlert(
                alert_key=event_id,
                customer_id=row["customer_id"],
                kind=AlertKind.NOTICE,
                items=1,
                request=notice.model_dump(mode="json"),
            )
        )
    return matches, alerts


class BatchActivities:
    """The batch steps, over the store, the batch directory and the rules."""

    def __init__(
        self,
        store: BatchStore,
        rules: RuleStore,
        settings: Settings,
        client: Client,
        preferences: PreferenceStore | None = None,
    ):
        self._preferences = preferences
        self._store = store
        self._rules = rules
        self._settings = settings
        self._client = client

    def _sources(self) -> FeedSources:
        try:
            return load_feed_sources(self._settings.rules_dir)
        except RuleSetError as exc:
            # An operator problem: retry until the file is fixed.
            raise ApplicationError(str(exc), type="rules.invalid") from exc

    @activity.defn(name="batch_prepare")
    async def prepare(self, req: PrepareBatch) -> BatchPlan:
        """Read the stored file once: reject malformed rows, write the chunks, store the plan."""
        batch = await asyncio.to_thread(self._store.get, req.batch_id)
        if batch is None:
            raise ApplicationError(
                f"no batch {req.batch_id}", type="batch.unknown", non_retryable=True
            )
        if batch.state is BatchState.FAILED:
            return BatchPlan(error=batch.error or "the file could not be read")
        if batch.state is not BatchState.RECEIVED and batch.chunks_total is not None:
            # Prepared before (a retry after the commit): the same plan, nothing rewritten.
            return BatchPlan(
                chunks=batch.chunks_total,
                rows_read=batch.rows_read,
                rows_rejected=batch.rows_rejected,
                rules_version=batch.rules_version,
            )
        sources = self._sources()
        try:
            mapping = sources.source(batch.source)
            conditions = await asyncio.to_thread(self._rules.condition_rules)
        except RuleSetError as exc:
            raise ApplicationError(str(exc), type="rules.invalid") from exc
        path = stored_path(self._settings.batch_dir, batch.sha256, FileFormat(batch.format))
        now = datetime.now(UTC)
        try:
            read = await _in_thread(read_batch_file, path, FileFormat(batch.format), mapping)
        except BatchFileError as exc:
            await asyncio.to_thread(self._store.fail, batch.batch_id, str(exc), now)
            return BatchPlan(error=str(exc))
        chunks = chunk_count(read.valid.height, self._settings.batch_chunk_rows)
        await _in_thread(write_chunks, self._settings.batch_dir, batch.batch_id, read.valid, chunks)
        rejects = [Reject(line=line, reason=reason) for line, reason in read.rejects.iter_rows()]
        snapshot = {
            "conditions": conditions.model_dump(mode="json"),
            "mapping": mapping.model_dump(mode="json"),
            "digest": sources.digest.model_dump(mode="json"),
        }
        await asyncio.to_thread(
            lambda: self._store.begin_screening(
                batch.batch_id,
                snapshot=snapshot,
                rules_version=conditions.version,
                sources_version=sources.version,
                rows_read=read.rows_read,
                rejects=rejects,
                chunks=chunks,
                at=now,
            )
        )
        log.info(
            "batch %s: %d rows, %d rejected, %d chunks",
            batch.batch_id,
            read.rows_read,
            len(rejects),
            chunks,
        )
        return BatchPlan(
            chunks=chunks,
            rows_read=read.rows_read,
            rows_rejected=len(rejects),
            rules_version=conditions.version,
        )

    def _preferences_frame(self, frame: pl.DataFrame, rule_set: ConditionRuleSet) -> pl.DataFrame:
        """The chunk's customers' preferences frame (the FI's defaults where none stored)."""
        customers = frame["customer_id"].unique().sort().to_list()
        stored = self._preferences.preferences_for(customers) if self._preferences else {}
        defaults = rule_set.defaults()
        return preferences_frame(
            (c, effective(c, stored.get(c), defaults).preferences) for c in customers
        )

    def _preference_matches(
        self, frame: pl.DataFrame, rule_set: ConditionRuleSet
    ) -> dict[str, list[Match]]:
        """The chunk's customers' own alert preferences (the FI's defaults where none)."""
        if self._preferences is None or frame.is_empty():
            return {}
        customers = frame["customer_id"].unique().sort().to_list()
        stored = self._preferences.preferences_for(customers)
        defaults = rule_set.defaults()
        prefs = preferences_frame(
            (c, effective(c, stored.get(c), defaults).preferences) for c in customers
        )
        found = screen_preferences(frame, prefs, rule_set.settings)
        return preference_matches_by_transaction(found)

    def _screen_chunk(self, req: ScreenChunk) -> ChunkResult:
        snapshot = self._store.snapshot(req.batch_id)
        rule_set = parse_condition_rule_set(snapshot["conditions"])
        digest = DigestRules.model_validate(snapshot["digest"])
        frame = read_chunk(self._settings.batch_dir, req.batch_id, req.chunk)
        if snapshot["mapping"].get("kind") == SourceKind.SETTLEMENT.value:
            key = self._settings.address_hash_key.get_secret_value()
            prefs = self._preferences_frame(frame, rule_set)
            matches, alerts = plan_balances(frame, prefs, key)
        else:
            extra = self._preference_matches(frame, rule_set)
            matches, alerts = plan_chunk(req.batch_id, frame, rule_set.compiled(), digest, extra)
        counts = self._store.save_chunk(
            req.batch_id,
            req.chunk,
            rows=frame.height,
            matches=matches,
            alerts=alerts,
            at=datetime.now(UTC),
        )
        return ChunkResult(**counts.model_dump())

    @activity.defn(name="batch_screen_chunk")
    async def screen_chunk(self, req: ScreenChunk) -> ChunkResult:
        """Screen one chunk with the run's conditions; store its matches and planned alerts."""
        return await _in_thread(self._screen_chunk, req)

    @activity.defn(name="batch_start_alerts")
    async def start_alerts(self, req: StartAlerts) -> AlertsPage:
        """Start planned alerts at most `per_second`; started ones are never started twice."""
        pending = await asyncio.to_thread(self._store.pending_alerts, req.batch_id, req.limit)
        interval = 1.0 / req.per_second
        next_at = time.monotonic()
        done: list[str] = []
        started = 0
        last_flush = time.monotonic()
        try:
            for planned in pending:
                # One start per interval: no burst even right after a restart.
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at = max(next_at, time.monotonic()) + interval
                await self._start(planned)
                done.append(planned.alert_key)
                started += 1
                activity.heartbeat(started)
                if time.monotonic() - last_flush >= 1.0:
                    await asyncio.to_thread(
                        self._store.mark_started, req.batch_id, done, datetime.now(UTC)
                    )
                    done = []
                    last_flush = time.monotonic()
        finally:
            # Whatever was started is recorded, even when this attempt is cut short.
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    asyncio.to_thread(
                        self._store.mark_started, req.batch_id, done, datetime.now(UTC)
                    )
                )
        remaining = await asyncio.to_thread(self._store.count_pending, req.batch_id)
        return AlertsPage(started=started, remaining=remaining)

    async def _start(self, planned: PlannedAlert) -> None:
        now = datetime.now(UTC)
        if planned.kind is AlertKind.FRAUD_ALERT:
            alert = AlertRequest.model_validate(planned.request)
            await start_fraud_alert(self._client, self._settings, alert, now, source="batch")
        else:
            notice = NoticeRequest.model_validate(planned.request)
            await start_notice(self._client, self._settings, notice, now)

    @activity.defn(name="batch_begin_alerting")
    async def begin_alerting(self, req: FinishBatch) -> BatchResult:
        """Every chunk is screened: total the matches and planned alerts."""
        record = await asyncio.to_thread(
            self._store.begin_alerting, req.batch_id, datetime.now(UTC)
        )
        return _result(record)

    @activity.defn(name="batch_finish")
    async def finish(self, req: FinishBatch) -> BatchResult:
        """Record the final counts and delete the chunk files (the stored file stays)."""
        record = await asyncio.to_thread(self._store.finish, req.batch_id, datetime.now(UTC))
        await asyncio.to_thread(remove_work, self._settings.batch_dir, req.batch_id)
        return _result(record)

    @activity.defn(name="batch_sweep_inbox")
    async def sweep_inbox(self, req: SweepInbox) -> SweepResult:
        """Move each settled inbox file into the store and start its batch."""
        inbox = self._settings.batch_inbox
        sources = self._sources()
        min_age = self._settings.batch_inbox_min_age_seconds
        batch_ids: list[str] = []
        set_aside = 0
        for path, source in await asyncio.to_thread(_inbox_files, inbox, min_age):
            fmt = format_of(path.name)
            if fmt is None or source not in sources.sources:
                # Kept, not deleted: an operator sees it beside the inbox and can fix it.
                await asyncio.to_thread(_set_aside, inbox, path)
                set_aside += 1
                log.warning("inbox file set aside: unknown format or source %r", source)
                continue
            stored = await asyncio.to_thread(
                functools.partial(store_file, self._settings.batch_dir, path, fmt, move=True)
            )
            accepted = await accept(
                self._client, self._settings, self._store, stored, source, datetime.now(UTC)
            )
            batch_ids.append(accepted.batch.batch_id)
            activity.heartbeat(len(batch_ids))
        return SweepResult(batch_ids=batch_ids, set_aside=set_aside)


def _result(record: BatchRecord) -> BatchResult:
    return BatchResult(
        batch_id=record.batch_id,
        state=record.state.value,
        rows_read=record.rows_read,
        rows_rejected=record.rows_rejected,
        rows_matched=record.rows_matched,
        alerts_planned=record.alerts_planned,
        alerts_started=record.alerts_started,
        error=record.error,
    )


SET_ASIDE_DIR = "set-aside"


def _inbox_files(inbox: Path, min_age: float) -> list[tuple[Path, str]]:
    """Settled files in the inbox (top level: the default source; NAME/: source NAME)."""
    if not inbox.is_dir():
        return []
    cutoff = time.time() - min_age
    found: list[tuple[Path, str]] = []
    for entry in sorted(inbox.iterdir()):
        if entry.name.startswith(".") or entry.name == SET_ASIDE_DIR:
            continue
        if entry.is_dir():
            found += [
                (f, entry.name)
                for f in sorted(entry.iterdir())
                if f.is_file() and not f.name.startswith(".") and f.stat().st_mtime <= cutoff
            ]
        elif entry.is_file() and entry.stat().st_mtime <= cutoff:
            found.append((entry, "default"))
    return found


def _set_aside(inbox: Path, path: Path) -> None:
    dest = inbox / SET_ASIDE_DIR
    dest.mkdir(exist_ok=True)
    target = dest / path.name
    n = 1
    while target.exists():
        target = dest / f"{path.stem}.{n}{path.suffix}"
        n += 1
    path.replace(target)


def alert_start_timeout(limit: int, per_second: float) -> timedelta:
    """Long enough for one page of alert starts at the rate, with room for slow starts."""
    return timedelta(seconds=60 + 3 * limit / per_second)
