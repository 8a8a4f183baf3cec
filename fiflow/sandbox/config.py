"""Sandbox process configuration, from SANDBOX_* environment variables."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]


class SandboxConfig(BaseSettings):
    """Where the sandbox listens, how its SMS gateway authenticates, what it seeds."""

    model_config = SettingsConfigDict(env_prefix="SANDBOX_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8100, ge=0, le=65535)
    sms_webhook_url: str = "http://127.0.0.1:8000/v1/channels/sms/inbound"
    # A well-known local default, like fiflow's own; any real deployment sets its own.
    sms_auth_token: str = "local-sms-auth-token-not-for-production"  # noqa: S105
    account_sid: str = "AC00000000000000000000000000000001"
    sms_from: str = "+15550100000"
    seed: int = 7
    # Benchmarks may want more distinct customers than the fixed minimum.
    customer_count: int = Field(default=24, ge=24, le=9999)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    log_level: LogLevel = "warning"
    # Pins the calendar (tenures, statement months) for reproducible dates; default: UTC today.
    today: date | None = None
    # Where generated feed files are written (default: a folder in the system's temp dir).
    feeds_dir: str | None = None
    # The JetStream server generated transactions are published to.
    nats_url: str = "nats://127.0.0.1:4222"
