"""Production mode: refuse to run while any secret still has its local, published default."""

from __future__ import annotations

import ipaddress

from fiflow.integrations import settings as defaults
from fiflow.integrations.settings import Settings


def is_loopback(host: str) -> bool:
    """Whether a listen address is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


def local_defaults_in_use(settings: Settings, *, codec_server: bool = False) -> list[str]:
    """The settings (by environment variable) that still hold a local default or are missing."""
    found: list[str] = []
    api_keys = set(settings.api_key_roles)
    if api_keys & set(defaults.parse_api_keys(defaults.LOCAL_API_KEYS)):
        found.append("FIFLOW_API_KEYS (a local key is in use)")
    staff_keys = set(settings.staff_key_people)
    if staff_keys & set(defaults.parse_staff_keys(defaults.LOCAL_STAFF_KEYS)):
        found.append("FIFLOW_STAFF_KEYS (a local key is in use)")
    if settings.customer_session_key.get_secret_value() == defaults.LOCAL_CUSTOMER_SESSION_KEY:
        found.append("FIFLOW_CUSTOMER_SESSION_KEY")
    if settings.push_token_key.get_secret_value() == defaults.LOCAL_PUSH_TOKEN_KEY:
        found.append("FIFLOW_PUSH_TOKEN_KEY")
    if settings.console_session_key.get_secret_value() == defaults.LOCAL_CONSOLE_SESSION_KEY:
        found.append("FIFLOW_CONSOLE_SESSION_KEY")
    if settings.sms_auth_token.get_secret_value() == defaults.LOCAL_SMS_AUTH_TOKEN:
        found.append("FIFLOW_SMS_AUTH_TOKEN")
    if settings.address_hash_key.get_secret_value() == defaults.LOCAL_ADDRESS_HASH_KEY:
        found.append("FIFLOW_ADDRESS_HASH_KEY")
    if not settings.payload_encryption:
        found.append("FIFLOW_PAYLOAD_ENCRYPTION (must stay on)")
    elif settings.payload_keys is None:
        found.append("FIFLOW_PAYLOAD_KEYS (a key file from `fiflow up` is for local use)")
    if codec_server and settings.codec_token is None and not settings.codec_oidc_issuer:
        found.append("FIFLOW_CODEC_OIDC_ISSUER or FIFLOW_CODEC_TOKEN")
    return found


def production_refusal(
    settings: Settings, *, bind_host: str | None = None, codec_server: bool = False
) -> str | None:
    """Why this process must not start, or None.

    Production mode, and any API bound beyond loopback, needs every secret set explicitly:
    the local defaults are printed by `fiflow up` and written in this repository.
    """
    exposed = bind_host is not None and not is_loopback(bind_host)
    if settings.env != "production" and not exposed:
        return None
    found = local_defaults_in_use(settings, codec_server=codec_server)
    if not found:
        return None
    why = "FIFLOW_ENV=production" if settings.env == "production" else f"listening on {bind_host}"
    return f"{why} needs real secrets; still local or unset: " + "; ".join(found)
