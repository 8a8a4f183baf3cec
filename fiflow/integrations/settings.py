"""Process configuration: one Settings object per process, from env vars with local defaults."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Local-only defaults. `fiflow up` prints them; production sets its own through env vars.
LOCAL_SMS_AUTH_TOKEN = "local-sms-auth-token-not-for-production"  # noqa: S105
LOCAL_SMS_ACCOUNT_SID = "AC00000000000000000000000000000001"
LOCAL_API_KEYS = (
    "system=local-system-key,channel=local-channel-key,"
    "reviewer=local-reviewer-key,admin=local-admin-key"
)
LOCAL_ADDRESS_HASH_KEY = "local-address-hash-key-not-for-production"
# Two admins, so four-eyes activations can be tried locally.
LOCAL_STAFF_KEYS = (
    "reviewer-1:reviewer=local-reviewer-1-key,"
    "admin-1:admin=local-admin-1-key,admin-2:admin=local-admin-2-key"
)
LOCAL_CUSTOMER_SESSION_KEY = "local-customer-session-key-not-for-production"  # noqa: S105
LOCAL_PUSH_TOKEN_KEY = "local-push-token-key-not-for-production"  # noqa: S105
LOCAL_CONSOLE_SESSION_KEY = "local-console-session-key-not-for-production"  # noqa: S105

ROLES = ("system", "channel", "reviewer", "admin")
# Roles held by a person (a staff key or an OIDC token), never by a shared system key alone.
STAFF_ROLES = ("reviewer", "admin")
# A staff person's ID: it ends up in reports as "reviewer:<id>", so no colon and short.
PERSON_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$"


def normalise_database_url(url: str) -> str:
    """Make every PostgreSQL URL use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def parse_api_keys(raw: str) -> dict[str, str]:
    """Parse `role=key,role=key` into {key: role}; unknown roles and blanks are refused."""
    keys: dict[str, str] = {}
    # Messages name an entry by its position: an entry may be a key, which must not be echoed.
    for n, part in enumerate(raw.split(","), start=1):
        part = part.strip()
        if not part:
            continue
        role, sep, key = part.partition("=")
        role, key = role.strip(), key.strip()
        if not sep or not key:
            raise ValueError(f"FIFLOW_API_KEYS entry {n} is not role=key")
        if role not in ROLES:
            raise ValueError(
                f"FIFLOW_API_KEYS entry {n} has a role that is not one of {', '.join(ROLES)}"
            )
        keys[key] = role
    return keys


def parse_staff_keys(raw: str) -> dict[str, tuple[str, str]]:
    """Parse `person:role=key,...` into {key: (person, role)}; roles are reviewer or admin."""
    keys: dict[str, tuple[str, str]] = {}
    for n, part in enumerate(raw.split(","), start=1):
        part = part.strip()
        if not part:
            continue
        who, sep, key = part.partition("=")
        person, colon, role = who.strip().rpartition(":")
        key = key.strip()
        if not sep or not colon or not key:
            raise ValueError(f"FIFLOW_STAFF_KEYS entry {n} is not person:role=key")
        if role not in STAFF_ROLES:
            raise ValueError(f"FIFLOW_STAFF_KEYS entry {n} has a role other than reviewer, admin")
        if not re.match(PERSON_ID, person):
            raise ValueError(f"FIFLOW_STAFF_KEYS entry {n} has a person ID not of [A-Za-z0-9._-]")
        keys[key] = (person, role)
    return keys


class Settings(BaseSettings):
    """Every fiflow process reads its configuration from FIFLOW_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="FIFLOW_", extra="ignore", populate_by_name=True)

    task_queue: str = "fiflow"
    # Workflow code runs in Temporal's sandbox, which refuses non-deterministic calls, at the
    # cost of re-importing the workflow module for every new run (about a third of a
    # worker's CPU under load). Every workflow test runs sandboxed whatever this says;
    # `FIFLOW_WORKFLOW_SANDBOX=false` lets a production worker skip that cost.
    workflow_sandbox: bool = True
    # Worker tuning (FIFLOW_WORKER_*); unset: the SDK's defaults. On 2 cores, 8 workflow
    # task polls (half of them non-sticky) with 20 workflow task slots measured no less CPU
    # per alert than the defaults (bench/README.md, Notes).
    # Runs kept in memory between their workflow tasks; an evicted run is replayed from its
    # history on its next task. Each cached sandboxed run holds about 30-90 KB.
    worker_max_cached_workflows: int = Field(default=1000, ge=0)
    worker_max_concurrent_workflow_tasks: int | None = Field(default=None, ge=1)
    # Every activity is async (blocking database calls go through asyncio.to_thread).
    worker_max_concurrent_activities: int = Field(default=200, ge=1)
    worker_max_concurrent_local_activities: int | None = Field(default=None, ge=1)
    # Workflow task polls in flight; a share of them (the ratio) polls the task queue itself
    # (new runs, runs not cached here), the rest this worker's sticky queue. With a cache the
    # SDK needs at least 2: one of each.
    worker_workflow_task_polls: int | None = Field(default=None, ge=2)
    worker_nonsticky_to_sticky_poll_ratio: float = Field(default=0.2, gt=0, le=1)
    worker_activity_task_polls: int | None = Field(default=None, ge=1)
    # FIFLOW_DATABASE_URL, or the conventional DATABASE_URL that platforms set.
    database_url: str = Field(
        default="sqlite:///.fiflow/fiflow.db",
        validation_alias=AliasChoices("FIFLOW_DATABASE_URL", "DATABASE_URL"),
    )
    rules_dir: Path | None = None  # None: the rule files shipped in the package

    # Back-office systems. Locally they are all the sandbox.
    sandbox_url: str = "http://127.0.0.1:8100"
    crm_url: str | None = None
    fraud_url: str | None = None
    card_url: str | None = None
    contact_center_url: str | None = None
    push_url: str | None = None
    sms_api_url: str | None = None
    bureau_url: str | None = None
    core_banking_url: str | None = None
    billing_url: str | None = None
    backoffice_timeout_seconds: float = 5.0

    # SMS provider (Twilio-compatible).
    sms_account_sid: str = LOCAL_SMS_ACCOUNT_SID
    sms_auth_token: SecretStr = SecretStr(LOCAL_SMS_AUTH_TOKEN)
    sms_from: str = "+15550100000"
    # The URL the provider calls, when the API sits behind a proxy that rewrites it.
    sms_webhook_public_url: str | None = None

    api_keys: SecretStr = SecretStr(LOCAL_API_KEYS)
    api_max_body_bytes: int = 64 * 1024

    # Keyed hash for conversation IDs and opt-out rows: addresses never appear in clear.
    address_hash_key: SecretStr = SecretStr(LOCAL_ADDRESS_HASH_KEY)
    # Every Temporal payload is encrypted (AES-256-GCM) unless this is explicitly false.
    payload_encryption: bool = True
    # The key ring: base64 AES-256 keys, comma-separated; the one marked `*` encrypts, the
    # others still decrypt histories written before a rotation. FIFLOW_PAYLOAD_KEY (one key)
    # is read too. Unset: the key file below, which `fiflow up` creates in its state dir.
    payload_keys: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("FIFLOW_PAYLOAD_KEYS", "FIFLOW_PAYLOAD_KEY")
    )
    payload_key_file: Path = Path(".fiflow/payload.key")

    # `production` refuses to start while a secret has its local default (see
    # fiflow.integrations.production); `fiflow up` is always local.
    env: Literal["local", "production"] = "local"

    # The codec server, which decodes payloads for the Temporal Web UI. Callers present
    # either the shared token (locally: generated by `fiflow up`) or an OIDC bearer token
    # from the issuer below carrying the reader role in the roles claim.
    codec_token: SecretStr | None = None
    codec_oidc_issuer: str | None = None
    codec_oidc_audience: str | None = None
    codec_oidc_jwks_url: str | None = None  # default: the issuer's /.well-known/jwks.json
    codec_oidc_roles_claim: str = "roles"  # a dotted path, e.g. realm_access.roles
    codec_reader_role: str = "fiflow-codec-reader"
    # Browser origins allowed to call the codec server (the Web UI's), comma-separated.
    codec_cors_origins: str = "http://127.0.0.1:8233,http://localhost:8233"
    fi_name: str = "Fiflow Bank"
    fi_help_text: str = (
        "Fiflow Bank fraud alerts: reply YES or NO with the code from the alert. "
        "Reply STOP to opt out. Questions: call 1-800-555-0100."
    )
    otel_console: bool = False
    log_level: str = "INFO"
    # `json`: one JSON object per line with trace, span and workflow ids (for log shippers);
    # `text`: plain lines for a console.
    log_format: Literal["text", "json"] = "text"
    # host:port of this process's Prometheus endpoint for the Temporal SDK's metrics
    # (workers: task latencies, slots, polls; the API: client requests). Unset: none.
    metrics_address: str | None = None

    # Abuse and cost bounds. Per API key, by the key's role: a token bucket refilled at
    # `per_second` holding at most `burst` requests (per API process; see api/rate_limits.py).
    api_rate_system_per_second: float = Field(default=200.0, gt=0)
    api_rate_system_burst: int = Field(default=400, ge=1)
    api_rate_channel_per_second: float = Field(default=100.0, gt=0)
    api_rate_channel_burst: int = Field(default=200, ge=1)
    api_rate_reviewer_per_second: float = Field(default=20.0, gt=0)
    api_rate_reviewer_burst: int = Field(default=50, ge=1)
    api_rate_admin_per_second: float = Field(default=10.0, gt=0)
    api_rate_admin_burst: int = Field(default=30, ge=1)
    # Per SMS sender: unsolicited answers (no open alert, code doesn't match, HELP, ...) per
    # window; beyond it the conversation stays silent. Replies to alerts are never limited.
    sms_auto_replies_max: int = Field(default=3, ge=0, le=100)
    sms_auto_replies_window_seconds: int = Field(default=3600, ge=1)
    # Inbound MessageSids are remembered this long to drop replayed webhooks; `fiflow db
    # purge-ledger` forgets older ones.
    sms_ledger_retention_days: int = Field(default=90, ge=1)
    # The retention schedule (fiflow schedules apply) deletes interaction events older than
    # this, and ledger entries older than the above, every `retention_every_hours`.
    interaction_events_retention_days: int = Field(default=90, ge=1)
    # It also deletes raw business-metric facts (their hour and day figures stay) and the
    # results reports of alerts and follow-ups past these.
    metric_events_retention_days: int = Field(default=400, ge=1)
    results_reports_retention_days: int = Field(default=5 * 365, ge=1)
    retention_every_hours: float = Field(default=24.0, gt=0)
    # Business metrics (README "Business metrics"): the aggregation schedule folds the
    # recorded facts into these periods (`hour`, `day`, comma-separated) every
    # `metrics_aggregate_every_minutes`.
    metrics_periods: str = Field(default="hour,day", pattern=r"^(hour|day)(,(hour|day))?$")
    metrics_aggregate_every_minutes: float = Field(default=60.0, gt=0)

    # Who calls (README "Security"). Staff keys name a person: `person:role=key,...`; the
    # shared role keys of api_keys can read but never review or activate rules.
    staff_keys: SecretStr = SecretStr(LOCAL_STAFF_KEYS)
    # Staff OIDC bearer tokens (production): the person from `person_claim`, the roles from
    # `roles_claim` (a dotted path) holding the reviewer or admin role names below.
    api_oidc_issuer: str | None = None
    api_oidc_audience: str | None = None
    api_oidc_jwks_url: str | None = None  # default: the issuer's /.well-known/jwks.json
    api_oidc_person_claim: str = "sub"
    api_oidc_roles_claim: str = "roles"
    api_oidc_reviewer_role: str = "fiflow-reviewer"
    api_oidc_admin_role: str = "fiflow-admin"
    # Signs the customer sessions (HS256 JWT, `sub` = customer_id) that the FI's login mints
    # for channel apps: a channel key reads a customer's objects only with one.
    customer_session_key: SecretStr = SecretStr(LOCAL_CUSTOMER_SESSION_KEY)
    # Binds a push reply to its alert and device (the token travels in the push's data).
    push_token_key: SecretStr = SecretStr(LOCAL_PUSH_TOKEN_KEY)
    # The staff console (`/console`): signs its session cookies and CSRF tokens; a session
    # lasts at most `console_session_hours`. `temporal_ui_url` is where its run links point.
    console_session_key: SecretStr = SecretStr(LOCAL_CONSOLE_SESSION_KEY)
    console_session_hours: float = Field(default=8.0, gt=0, le=24)
    temporal_ui_url: str = "http://127.0.0.1:8233"

    # The durable inbox (README "Nothing lost"): an inbound SMS or push reply that Temporal
    # cannot take within `inbox_deliver_timeout_seconds` is stored and answered 200; each API
    # process relays stored messages every `inbox_relay_interval_seconds`, backing off up to
    # `inbox_relay_max_backoff_seconds` while Temporal stays down. Delivered rows are kept
    # `inbox_retention_days`, then purged by the relay.
    inbox_deliver_timeout_seconds: float = Field(default=4.0, gt=0, le=10)
    inbox_relay_interval_seconds: float = Field(default=1.0, gt=0)
    inbox_relay_max_backoff_seconds: float = Field(default=10.0, gt=0)
    inbox_retention_days: int = Field(default=7, ge=1)
    inbox_relay: bool = True  # false: this API process queues but never relays

    # The real-time feed on NATS JetStream (docs/feeds.md "The stream"). A comma-separated
    # URL list for a cluster; credentials as user and password, a token, or a .creds file
    # (JWT + NKey); TLS from the CA (and client certificate) files, or a tls:// URL.
    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    nats_token: SecretStr | None = None
    nats_creds_file: Path | None = None
    nats_tls_ca_file: Path | None = None
    nats_tls_cert_file: Path | None = None
    nats_tls_key_file: Path | None = None
    # The FI's core publishes one JSON transaction per message to feed_subject; the stream
    # holds every subject under feed_subjects. Malformed messages go to the dead-letter subject.
    feed_stream: str = "FIFLOW_TRANSACTIONS"
    feed_subjects: str = "fiflow.transactions.>"
    feed_subject: str = "fiflow.transactions.card"
    feed_dead_letter_stream: str = "FIFLOW_DEAD_LETTERS"
    feed_dead_letter_subject: str = "fiflow.deadletter.transactions"
    feed_consumer: str = "fiflow-feed"  # the durable consumer every `fiflow feed` shares
    feed_window_bucket: str = "fiflow_windows"  # KV bucket of the windows' state
    feed_batch_size: int = Field(default=64, ge=1, le=1000)
    feed_ack_wait_seconds: float = Field(default=30.0, gt=0)
    feed_max_deliver: int = Field(default=1000, ge=2)
    # Publishers put a transaction on `<feed_subject>.<partition>`, the partition a hash of its
    # customer id modulo feed_partitions (the same on every publisher: change it only with
    # the stream drained). Consumer process `index` of `count` reads the partitions p with
    # p % count == index, so one process judges a customer's transactions, in order.
    feed_partitions: int = Field(default=32, ge=1, le=1024)
    feed_consumer_index: int = Field(default=0, ge=0)
    feed_consumer_count: int = Field(default=1, ge=1)
    # Window states a consumer process keeps between batches (a read saved per hit).
    feed_window_cache_size: int = Field(default=20_000, ge=0)
    # Alert and notice starts one consumer process has in flight at once (bench/
    # feeds_consumer.py on the local dev server: 8 and 64 measured alike, within the noise).
    feed_start_concurrency: int = Field(default=32, ge=1, le=1000)
    # `POST /v1/feeds/transactions`: at most this many NDJSON lines and bytes per request.
    feed_ingest_max_lines: int = Field(default=1000, ge=1, le=10_000)
    feed_ingest_max_bytes: int = Field(default=1024 * 1024, ge=1024)

    # Batch files (docs/feeds.md, "Batch files"). Every file is copied into this
    # content-addressed store (`<sha256>.<ext>`) before its run starts; each worker reads its
    # chunks from here, so workers on several hosts need it on a shared volume.
    batch_dir: Path = Path(".fiflow/batches")
    # Files dropped here (or in a subdirectory named after their source) are taken in by the
    # inbox sweep schedule every `batch_inbox_every_minutes`; None: `<batch_dir>/inbox`.
    batch_inbox_dir: Path | None = None
    batch_inbox_every_minutes: float = Field(default=5.0, gt=0)
    # A file younger than this is left for the next sweep (it may still be being written).
    batch_inbox_min_age_seconds: float = Field(default=10.0, ge=0)
    # Valid rows per chunk activity; chunks run on any worker, `batch_parallelism` at once.
    batch_chunk_rows: int = Field(default=50_000, ge=1)
    batch_parallelism: int = Field(default=8, ge=1, le=256)
    # Alert starts per second of one batch: a large file cannot flood customers or the cluster.
    batch_alerts_per_second: float = Field(default=20.0, gt=0)
    # The largest file `POST /v1/feeds/batches` takes (the inbox has no limit).
    batch_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1)

    @field_validator("database_url")
    @classmethod
    def _normalise_db(cls, v: str) -> str:
        return normalise_database_url(v)

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, v: SecretStr) -> SecretStr:
        parse_api_keys(v.get_secret_value())
        return v

    @field_validator("staff_keys")
    @classmethod
    def _check_staff_keys(cls, v: SecretStr) -> SecretStr:
        parse_staff_keys(v.get_secret_value())
        return v

    @property
    def staff_key_people(self) -> dict[str, tuple[str, str]]:
        """Map of staff key to (person, role)."""
        return parse_staff_keys(self.staff_keys.get_secret_value())

    @property
    def api_key_roles(self) -> dict[str, str]:
        """Map of API key to role."""
        return parse_api_keys(self.api_keys.get_secret_value())

    @property
    def batch_inbox(self) -> Path:
        """The directory the inbox sweep takes batch files from."""
        return self.batch_inbox_dir or self.batch_dir / "inbox"

    def system_url(self, system: str) -> str:
        """Base URL of one back-office system (its own setting, else the sandbox)."""
        own = getattr(self, f"{system}_url", None)
        return (own or self.sandbox_url).rstrip("/")


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
