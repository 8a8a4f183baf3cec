"""Process configuration: one Settings object per process, from env vars with local defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Local-only defaults. `fiflow up` prints them; production sets its own through env vars.
LOCAL_SMS_AUTH_TOKEN = "local-sms-auth-token-not-for-production"  # noqa: S105
LOCAL_SMS_ACCOUNT_SID = "AC00000000000000000000000000000001"
LOCAL_API_KEYS = (
    "system=local-system-key,channel=local-channel-key,"
    "reviewer=local-reviewer-key,admin=local-admin-key"
)
LOCAL_ADDRESS_HASH_KEY = "local-address-hash-key-not-for-production"

ROLES = ("system", "channel", "reviewer", "admin")


def normalise_database_url(url: str) -> str:
    """Make every PostgreSQL URL use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def parse_api_keys(raw: str) -> dict[str, str]:
    """Parse `role=key,role=key` into {key: role}; unknown roles and blanks are refused."""
    keys: dict[str, str] = {}
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        role, sep, key = part.partition("=")
        role, key = role.strip(), key.strip()
        if not sep or not key:
            raise ValueError(f"FIFLOW_API_KEYS entry {part!r} is not role=key")
        if role not in ROLES:
            raise ValueError(f"FIFLOW_API_KEYS role {role!r} is not one of {', '.join(ROLES)}")
        keys[key] = role
    return keys


class Settings(BaseSettings):
    """Every fiflow process reads its configuration from FIFLOW_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="FIFLOW_", extra="ignore")

    task_queue: str = "fiflow"
    # Workflow code runs in Temporal's sandbox, which refuses non-deterministic calls, at the
    # cost of re-importing the workflow module for every new run (about a third of a
    # worker's CPU under load). Every workflow test runs sandboxed whatever this says;
    # `FIFLOW_WORKFLOW_SANDBOX=false` lets a production worker skip that cost.
    workflow_sandbox: bool = True
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
    sms_auth_token: str = LOCAL_SMS_AUTH_TOKEN
    sms_from: str = "+15550100000"
    # The URL the provider calls, when the API sits behind a proxy that rewrites it.
    sms_webhook_public_url: str | None = None

    api_keys: str = LOCAL_API_KEYS
    api_max_body_bytes: int = 64 * 1024

    # Keyed hash for conversation IDs and opt-out rows: addresses never appear in clear.
    address_hash_key: str = LOCAL_ADDRESS_HASH_KEY
    # Base64 AES-256 key; when set, every Temporal payload is encrypted.
    payload_key: str | None = None
    fi_name: str = "Fiflow Bank"
    fi_help_text: str = (
        "Fiflow Bank fraud alerts: reply YES or NO with the code from the alert. "
        "Reply STOP to opt out. Questions: call 1-800-555-0100."
    )
    otel_console: bool = False
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _normalise_db(cls, v: str) -> str:
        return normalise_database_url(v)

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, v: str) -> str:
        parse_api_keys(v)
        return v

    @property
    def api_key_roles(self) -> dict[str, str]:
        """Map of API key to role."""
        return parse_api_keys(self.api_keys)

    def system_url(self, system: str) -> str:
        """Base URL of one back-office system (its own setting, else the sandbox)."""
        own = getattr(self, f"{system}_url", None)
        return (own or self.sandbox_url).rstrip("/")


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
