"""The database layer: engine factory, table definitions and Alembic migrations run in code."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine, make_url

from fiflow.integrations.settings import normalise_database_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Execution option read by the SQLite "begin" hook; see begin_write().
_SQLITE_IMMEDIATE = "fiflow_sqlite_begin_immediate"

# Alembic's `context` and `op` are module-level proxies, so two migrations in one process
# would clobber each other; processes are serialised by a database lock in env.py instead.
_alembic_lock = threading.Lock()

metadata = sa.MetaData()

sms_opt_outs = sa.Table(
    "sms_opt_outs",
    metadata,
    # A keyed hash of the phone number: the number itself is never stored.
    sa.Column("address_hash", sa.String(64), primary_key=True),
    sa.Column("opted_out", sa.Boolean, nullable=False),
    sa.Column("keyword", sa.String(32), nullable=True),
    sa.Column("source_message_id", sa.String(64), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# One immutable result report per finished credit application. Datetimes are stored in UTC:
# SQLite keeps no offset, so anything else would compare wrongly there.
credit_reports = sa.Table(
    "credit_reports",
    metadata,
    sa.Column("application_id", sa.String(64), primary_key=True),
    sa.Column("product", sa.String(32), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("decided_by", sa.String(64), nullable=True),
    sa.Column("rule_set_version", sa.String(64), nullable=False),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("report", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
    # Keyset paging walks (completed_at, application_id); the API filters by the other two.
    sa.Index("ix_credit_reports_completed_at_application_id", "completed_at", "application_id"),
    sa.Index("ix_credit_reports_decision", "decision"),
    sa.Index("ix_credit_reports_product", "product"),
)

# JSON that stores Python None as SQL NULL (not the JSON literal null), so COALESCE in the
# interaction upsert can tell "not given" from a stored value.
_NULLABLE_JSON = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)

# One row per customer interaction (a call, a chat, an app session): what it was about and
# how it ended, so later interactions of the same customer can see the context.
interactions = sa.Table(
    "interactions",
    metadata,
    sa.Column("interaction_id", sa.String(128), primary_key=True),
    sa.Column("customer_id", sa.String(128), nullable=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(64), nullable=True),
    sa.Column("outcome", sa.String(64), nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("summary", _NULLABLE_JSON, nullable=True),
    # "This customer's recent interactions, newest first" is the one query by customer.
    sa.Index("ix_interactions_customer_id_started_at", "customer_id", "started_at"),
)

# Follow-ups still waiting, per customer: a new interaction from the customer stops them.
follow_ups = sa.Table(
    "follow_ups",
    metadata,
    sa.Column("follow_up_id", sa.String(128), primary_key=True),
    sa.Column("customer_id", sa.String(128), nullable=False),
    sa.Column("ticket_id", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_follow_ups_customer_id_status", "customer_id", "status"),
)

# Inbound SMS MessageSids already handed to a conversation: a webhook replayed long after the
# conversation forgot the ID is dropped here. Only the ID and when it was accepted (for the
# retention purge): no number, no body.
sms_message_ledger = sa.Table(
    "sms_message_ledger",
    metadata,
    sa.Column("message_id", sa.String(128), primary_key=True),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_sms_message_ledger_accepted_at", "accepted_at"),
)

# Inbound customer messages (SMS, push replies) Temporal could not take when they came: the
# API answered the provider 200 and a relay delivers them, oldest first per address, once
# Temporal is back. The address is a keyed hash (the queue key); the number and the text
# the relay needs are in `payload`, sealed with the payload key ring. Delivered rows stay
# for the retention purge, so a late provider retry still finds its message ID.
inbound_inbox = sa.Table(
    "inbound_inbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("address_digest", sa.String(64), nullable=False),
    sa.Column("message_id", sa.String(128), nullable=False),
    sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    # A relay's lease on the address's pending rows; a crashed relay's lease just runs out.
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    # The error's type only: driver and RPC messages can quote the payload.
    sa.Column("last_error", sa.String(128), nullable=True),
    sa.UniqueConstraint("channel", "message_id", name="uq_inbound_inbox_channel_message_id"),
    sa.Index("ix_inbound_inbox_address_digest_id", "address_digest", "id"),
    sa.Index("ix_inbound_inbox_delivered_at", "delivered_at"),
)

# Every event accepted for an interaction, once per event_id; seq is the acceptance order.
interaction_events = sa.Table(
    "interaction_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("interaction_id", sa.String(128), nullable=False),
    sa.Column("customer_id", sa.String(128), nullable=True),
    sa.Column("channel", sa.String(16), nullable=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column(
        "attributes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
    ),
    # The dedup key: a redelivered event conflicts here instead of being stored twice.
    sa.UniqueConstraint("event_id", name="uq_interaction_events_event_id"),
    sa.Index("ix_interaction_events_interaction_id", "interaction_id"),
)

# Every activation of a rule set version; the newest activation of a name is the active one.
rule_versions = sa.Table(
    "rule_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("content", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("activated_by", sa.String(64), nullable=True),
    # A version names one content for good: concurrent activations of it race on this.
    sa.UniqueConstraint("name", "version", name="uq_rule_versions_name_version"),
    sa.Index("ix_rule_versions_name_activated_at", "name", "activated_at"),
)

# Activations waiting for a second admin (four-eyes rule sets), and how each one ended.
# Migration 0006 creates it.
rule_activation_requests = sa.Table(
    "rule_activation_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("content", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("requested_by", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | approved
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("decided_by", sa.String(64), nullable=True),
    # One pending request per version: a second PUT of it is the same request.
    sa.Index(
        "uq_rule_activation_requests_pending",
        "name",
        "version",
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    ),
)

# Each customer's alert preferences, one versioned document (fiflow.domain.feeds.preferences):
# a write names the version it replaces, so two app sessions never overwrite each other
# silently. Migration 0008 creates it.
alert_preferences = sa.Table(
    "alert_preferences",
    metadata,
    sa.Column("customer_id", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column(
        "preferences", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
    ),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=True),
)


# Business metrics (fiflow.domain.metrics): one row per fact, once per key (the business
# workflow ID and step), folded by the aggregation schedule into metric_periods. Labels are
# canonical JSON of fixed vocabularies, never personal data. Migration 0010 creates both.
metric_events = sa.Table(
    "metric_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("event_key", sa.String(200), nullable=False),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("labels", sa.String(512), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    # Set once a pass folded the event into its periods; NULL: not yet.
    sa.Column("aggregated_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("event_key", name="uq_metric_events_event_key"),
    sa.Index("ix_metric_events_occurred_at", "occurred_at"),
    sa.Index("ix_metric_events_aggregated_at", "aggregated_at"),
)

# Each metric and label set per period (hour, day), recomputed whole from metric_events.
metric_periods = sa.Table(
    "metric_periods",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("labels", sa.String(512), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("sum", sa.Float, nullable=True),
    sa.Column("p50", sa.Float, nullable=True),
    sa.Column("p95", sa.Float, nullable=True),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint(
        "kind", "period_start", "metric", "labels", name="uq_metric_periods_period_metric"
    ),
)


# One results report per finished fraud alert or follow-up, written once by the activity
# that records the flow's business facts. The body is sealed with the payload key ring like
# the credit report's; the columns the lists filter on hold IDs, configuration words and
# instants only. Migration 0011 creates it.
results_reports = sa.Table(
    "results_reports",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("subject_id", sa.String(128), primary_key=True),
    sa.Column("workflow_id", sa.String(200), nullable=False),
    sa.Column("report_type", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("report", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
    # Keyset paging walks (kind, completed_at, subject_id); retention deletes by completed_at.
    sa.Index("ix_results_reports_kind_completed_at", "kind", "completed_at", "subject_id"),
    sa.Index("ix_results_reports_completed_at", "completed_at"),
)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Python 3.11's sqlite3 issues its own BEGIN lazily and never BEGIN IMMEDIATE;
    # switching it to autocommit lets the "begin" hook below own transaction start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL survives process crashes; only an OS crash can drop the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # A deferred transaction that reads and then writes fails with SQLITE_BUSY (no
    # busy-wait) when another process committed in between; IMMEDIATE takes the write
    # lock up front, so writers queue on busy_timeout instead.
    if conn.get_execution_options().get(_SQLITE_IMMEDIATE):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def create_db_engine(url: str) -> Engine:
    """Create an engine for a SQLite or PostgreSQL URL with fiflow's connection settings."""
    url = normalise_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    # Connections idle in the pool die when PostgreSQL restarts or a proxy times them out.
    return sa.create_engine(parsed, pool_pre_ping=True)


@contextmanager
def begin_write(engine: Engine) -> Iterator[Connection]:
    """Open a transaction that holds the write lock from its first statement on SQLite."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.execution_options(**{_SQLITE_IMMEDIATE: True})
        with conn.begin():
            yield conn


def alembic_config(url: str) -> Config:
    """Alembic configuration built in code, so no alembic.ini is needed at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    # Passed as an attribute rather than a main option: ConfigParser would
    # interpolate a '%' in a URL-encoded password.
    config.attributes["url"] = normalise_database_url(url)
    return config


def upgrade_database(url: str) -> None:
    """Apply every pending migration (safe to run from several processes at once)."""
    with _alembic_lock:
        command.upgrade(alembic_config(url), "head")


def head_revision() -> str:
    """The newest migration revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(url: str) -> str | None:
    """The migration revision the database is at, or None if it was never migrated."""
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
