"""Batch screening under test: the real activities over a SQLite store and a batch directory,
with stand-ins for the two alert workflows (registered under their names) that record what
they were started with."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from fiflow.activities.batch_screening import BatchActivities
from fiflow.domain.alerts import AlertInput
from fiflow.domain.notices import NoticeInput
from fiflow.integrations.batch_files import FileFormat, store_stream
from fiflow.integrations.batch_intake import Accepted, accept
from fiflow.integrations.batch_store import BatchStore
from fiflow.integrations.database import create_db_engine
from fiflow.integrations.preferences_store import PreferenceStore
from fiflow.integrations.rule_versions import RuleVersionStore
from fiflow.integrations.rules_store import RuleStore
from fiflow.integrations.settings import Settings
from fiflow.workflows.batch_screening import BatchInboxSweepWorkflow, BatchScreeningWorkflow
from tests.fixtures.migrated_db import migrated_sqlite

STAND_IN_TYPES = frozenset({"FraudAlertWorkflow", "InformationalAlertWorkflow"})
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
COLUMNS = (
    "transaction_id",
    "customer_id",
    "card_last4",
    "amount",
    "currency",
    "merchant",
    "mcc",
    "country",
    "card_present",
    "status",
    "occurred_at",
)

# The test's own conditions, so a change to the shipped ones cannot move these counts.
CONDITIONS = """
name: conditions
version: "batch-test-1"
home_country: US
home_currency: USD
conditions:
  - id: large_card_not_present
    when: not card_present and amount >= 5000
    starts: fraud_alert
    alert_type: card_not_present_suspected
  - id: repeated_declines
    when: status = "declined" and count(status = "declined", within 15m, per card) >= 3
    starts: informational_alert
    alert_type: repeated_declines
    channel: sms
  - id: big_purchase
    when: status = "approved" and card_present and amount >= 500
    starts: informational_alert
    alert_type: big_purchase
"""


def rules_dir(tmp_path: Path) -> Path:
    """A rules directory holding the test's conditions (the other rule sets: packaged)."""
    directory = tmp_path / "rules"
    directory.mkdir(exist_ok=True)
    (directory / "conditions.yaml").write_text(CONDITIONS)
    return directory


def txn(
    transaction_id: str,
    customer_id: str,
    *,
    amount: str = "20.00",
    minutes: float = 0,
    card_present: str = "true",
    status: str = "approved",
    card: str = "4242",
    **overrides: str,
) -> dict[str, str]:
    """One CSV row (every value as text, as in a file)."""
    at = T0 + timedelta(minutes=minutes)
    row = {
        "transaction_id": transaction_id,
        "customer_id": customer_id,
        "card_last4": card,
        "amount": amount,
        "currency": "USD",
        "merchant": "ACME Stores",
        "mcc": "5411",
        "country": "US",
        "card_present": card_present,
        "status": status,
        "occurred_at": at.isoformat(),
    }
    row.update(overrides)
    return row


def csv_bytes(rows: Iterable[dict[str, str]], columns: Sequence[str] = COLUMNS) -> bytes:
    """A CSV file of these rows, with a header line."""
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode()


@dataclass
class Started:
    """What the stand-in alert workflows were started with."""

    fraud: list[AlertInput] = field(default_factory=list)
    notices: list[NoticeInput] = field(default_factory=list)

    @activity.defn(name="standin_fraud_alert_started")
    async def fraud_started(self, inp: AlertInput) -> None:
        """Record a fraud alert start."""
        self.fraud.append(inp)

    @activity.defn(name="standin_notice_started")
    async def notice_started(self, inp: NoticeInput) -> None:
        """Record a notice start."""
        self.notices.append(inp)

    def runs(self) -> list[str]:
        """Every alert's source event, once per workflow run that recorded it."""
        return [a.request.source_event_id for a in self.fraud] + [
            n.request.source_event_id for n in self.notices
        ]


@workflow.defn(name="FraudAlertWorkflow", sandboxed=False)
class FraudAlertStandIn:
    """Records its input, then ends."""

    @workflow.run
    async def run(self, inp: AlertInput) -> None:
        """Record the start."""
        await workflow.execute_activity(
            "standin_fraud_alert_started", inp, start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn(name="InformationalAlertWorkflow", sandboxed=False)
class NoticeStandIn:
    """Records its input, then ends."""

    @workflow.run
    async def run(self, inp: NoticeInput) -> None:
        """Record the start."""
        await workflow.execute_activity(
            "standin_notice_started", inp, start_to_close_timeout=timedelta(seconds=10)
        )


BATCH_WORKFLOWS: list[type] = [BatchScreeningWorkflow, BatchInboxSweepWorkflow]
STAND_INS: list[type] = [FraudAlertStandIn, NoticeStandIn]


@dataclass
class BatchHarness:
    """Settings, store and activities of one test."""

    settings: Settings
    store: BatchStore
    activities: BatchActivities
    client: Client
    started: Started
    preferences: PreferenceStore

    def worker(self, **kw: Any) -> Worker:
        """A worker with the batch workflows, their activities and the alert stand-ins."""
        return Worker(
            self.client,
            task_queue=self.settings.task_queue,
            workflows=[*BATCH_WORKFLOWS, *STAND_INS],
            activities=activity_list(self.activities, self.started),
            **kw,
        )

    async def submit(self, data: bytes, source: str = "default") -> Accepted:
        """Store a file and start its batch, as the API does."""
        stored = store_stream(self.settings.batch_dir, [data], FileFormat.CSV)
        return await accept(
            self.client, self.settings, self.store, stored, source, datetime.now(UTC)
        )


def activity_list(activities: BatchActivities, started: Started) -> list[Any]:
    """The batch activities and the stand-ins' recorders."""
    return [
        activities.prepare,
        activities.screen_chunk,
        activities.begin_alerting,
        activities.start_alerts,
        activities.finish,
        activities.sweep_inbox,
        started.fraud_started,
        started.notice_started,
    ]


def batch_settings(tmp_path: Path, task_queue: str, **overrides: Any) -> Settings:
    """Settings of a test: its own database, batch directory and rules."""
    url = f"sqlite:///{tmp_path / 'fiflow.db'}"
    values: dict[str, Any] = {
        "task_queue": task_queue,
        "database_url": url,
        "batch_dir": tmp_path / "batches",
        "rules_dir": rules_dir(tmp_path),
        "payload_encryption": False,
        "batch_chunk_rows": 4,
        "batch_alerts_per_second": 200.0,
        "batch_inbox_min_age_seconds": 0,
        **overrides,
    }
    return Settings(**values)


def batch_harness(client: Client, settings: Settings) -> BatchHarness:
    """A harness over a freshly migrated database."""
    migrated_sqlite(settings.database_url)
    engine = create_db_engine(settings.database_url)
    store = BatchStore(engine)
    rules = RuleStore(settings.rules_dir, RuleVersionStore(engine))
    preferences = PreferenceStore(engine)
    activities = BatchActivities(store, rules, settings, client, preferences)
    return BatchHarness(settings, store, activities, client, Started(), preferences)
