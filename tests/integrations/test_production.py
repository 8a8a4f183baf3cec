"""Production mode refuses local secrets; bad settings are reported without their values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fiflow.integrations.codec import new_key
from fiflow.integrations.production import is_loopback, production_refusal
from fiflow.integrations.settings import Settings, parse_staff_keys

REAL = {
    "api_keys": "system=s-8f2a,channel=c-77d1,reviewer=r-1b9e,admin=a-5c3f",
    "sms_auth_token": "twilio-token-from-the-vault",
    "address_hash_key": "hash-key-from-the-vault",
    "payload_keys": new_key(),
    "codec_token": "codec-token-from-the-vault",
    "staff_keys": "ana:reviewer=sr-41c2,ben:admin=sa-9d0e",
    "customer_session_key": "session-key-from-the-vault",
    "push_token_key": "push-key-from-the-vault",
    "console_session_key": "console-key-from-the-vault",
}


def test_local_mode_on_loopback_runs_with_local_defaults() -> None:
    assert production_refusal(Settings(), bind_host="127.0.0.1") is None
    assert production_refusal(Settings()) is None


def test_production_mode_names_every_local_secret() -> None:
    refusal = production_refusal(Settings(env="production"), codec_server=True)
    assert refusal is not None
    for name in (
        "FIFLOW_API_KEYS",
        "FIFLOW_SMS_AUTH_TOKEN",
        "FIFLOW_ADDRESS_HASH_KEY",
        "FIFLOW_PAYLOAD_KEYS",
        "FIFLOW_CODEC_OIDC_ISSUER or FIFLOW_CODEC_TOKEN",
        "FIFLOW_STAFF_KEYS",
        "FIFLOW_CUSTOMER_SESSION_KEY",
        "FIFLOW_PUSH_TOKEN_KEY",
        "FIFLOW_CONSOLE_SESSION_KEY",
    ):
        assert name in refusal


def test_production_mode_with_real_secrets_starts() -> None:
    settings = Settings(env="production", **REAL)
    assert production_refusal(settings, bind_host="0.0.0.0", codec_server=True) is None


def test_one_local_key_among_real_ones_is_enough_to_refuse() -> None:
    mixed = {**REAL, "api_keys": REAL["api_keys"] + ",admin=local-admin-key"}
    refusal = production_refusal(Settings(env="production", **mixed))
    assert refusal is not None and "FIFLOW_API_KEYS" in refusal
    assert "local-admin-key" not in refusal


def test_a_local_staff_key_among_real_ones_refuses_and_is_not_echoed() -> None:
    mixed = {**REAL, "staff_keys": REAL["staff_keys"] + ",admin-2:admin=local-admin-2-key"}
    refusal = production_refusal(Settings(env="production", **mixed))
    assert refusal is not None and "FIFLOW_STAFF_KEYS" in refusal
    assert "local-admin-2-key" not in refusal


def test_staff_keys_name_a_person_and_a_staff_role() -> None:
    people = Settings(staff_keys="ana:reviewer=k1, ben.k:admin=k=2").staff_key_people
    assert people == {"k1": ("ana", "reviewer"), "k=2": ("ben.k", "admin")}
    for bad in ("ana=k1", "ana:system=k1", "a b:reviewer=k1", ":admin=k1", "ana:admin="):
        with pytest.raises(ValueError) as refused:
            parse_staff_keys(bad)
        assert "k1" not in str(refused.value)
        with pytest.raises(ValueError):
            Settings(staff_keys=bad)


def test_encryption_cannot_be_turned_off_in_production() -> None:
    settings = Settings(env="production", **{**REAL, "payload_encryption": False})
    refusal = production_refusal(settings)
    assert refusal is not None and "FIFLOW_PAYLOAD_ENCRYPTION" in refusal


def test_an_api_bound_beyond_loopback_is_production_whatever_the_mode() -> None:
    refusal = production_refusal(Settings(), bind_host="0.0.0.0")
    assert refusal is not None and refusal.startswith("listening on 0.0.0.0")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("api.bank.example")


def fiflow(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FIFLOW_", "TEMPORAL_"))}
    return subprocess.run(
        [sys.executable, "-m", "fiflow.starters.cli", *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("part", [["api"], ["worker"], ["codec-server"]])
def test_parts_refuse_to_start_in_production_with_local_secrets(
    part: list[str], tmp_path: Path
) -> None:
    result = fiflow(*part, env={"FIFLOW_ENV": "production"}, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "FIFLOW_ENV=production needs real secrets" in result.stderr
    assert "FIFLOW_SMS_AUTH_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_api_refuses_a_public_bind_with_local_secrets(tmp_path: Path) -> None:
    result = fiflow("api", "--host", "0.0.0.0", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert "listening on 0.0.0.0 needs real secrets" in result.stderr


def test_a_worker_without_a_payload_key_says_how_to_get_one(tmp_path: Path) -> None:
    result = fiflow("worker", env={}, cwd=tmp_path)  # no .fiflow/payload.key here
    assert result.returncode == 2
    assert "FIFLOW_PAYLOAD_KEYS" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FIFLOW_API_KEYS", "sk_live_9f8e7d6c5b4a"),
        ("FIFLOW_API_KEYS", "superuser=sk_live_9f8e7d6c5b4a"),
        ("FIFLOW_PAYLOAD_KEYS", "sk_live_9f8e7d6c5b4a"),
    ],
)
def test_a_malformed_secret_is_reported_without_its_value(
    name: str, value: str, tmp_path: Path
) -> None:
    result = fiflow("worker", env={name: value}, cwd=tmp_path)
    assert result.returncode == 2
    assert "configuration error" in result.stderr
    assert "sk_live_9f8e7d6c5b4a" not in result.stdout + result.stderr
