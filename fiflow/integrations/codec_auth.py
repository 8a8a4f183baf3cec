"""Who may use the codec server: a shared token, or an OIDC bearer token with the reader role."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from fiflow.integrations.settings import Settings

# Asymmetric algorithms only: an HS256 token would be "signed" with a public key.
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class Verdict(StrEnum):
    """The outcome of checking a caller."""

    ALLOWED = "allowed"
    UNAUTHENTICATED = "unauthenticated"  # no credential, or one that does not verify
    FORBIDDEN = "forbidden"  # a valid identity without the reader role


@dataclass(frozen=True)
class Decision:
    """A verdict and a message safe to return (never the token or a claim value)."""

    verdict: Verdict
    message: str


def _roles(claims: dict[str, Any], path: str) -> set[str]:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return set(value.split())
    if isinstance(value, list):
        return {str(v) for v in value}
    return set()


class CodecAuth:
    """Checks the credential on each codec request."""

    def __init__(self, settings: Settings):
        self._token = settings.codec_token.get_secret_value() if settings.codec_token else None
        self._issuer = settings.codec_oidc_issuer
        self._audience = settings.codec_oidc_audience
        self._roles_claim = settings.codec_oidc_roles_claim
        self._reader_role = settings.codec_reader_role
        self._jwks: jwt.PyJWKClient | None = None
        if self._issuer:
            url = settings.codec_oidc_jwks_url or (
                self._issuer.rstrip("/") + "/.well-known/jwks.json"
            )
            # Keys are cached, and fetched again when a token names an unknown key id.
            self._jwks = jwt.PyJWKClient(url, cache_keys=True, lifespan=600, timeout=5)

    @property
    def configured(self) -> bool:
        """Whether any way to authenticate exists (the server refuses to start otherwise)."""
        return self._token is not None or self._jwks is not None

    async def check(self, presented: str | None) -> Decision:
        """Allowed for the shared token, or a verified OIDC token carrying the reader role."""
        if not presented:
            return Decision(Verdict.UNAUTHENTICATED, "a bearer token is required")
        if self._token is not None and hmac.compare_digest(
            presented.encode(), self._token.encode()
        ):
            return Decision(Verdict.ALLOWED, "shared token")
        if self._jwks is None:
            return Decision(Verdict.UNAUTHENTICATED, "the token is not valid")
        try:
            # The JWKS fetch is blocking I/O: keep it off the event loop.
            claims = await asyncio.to_thread(self._verify, presented)
        except jwt.PyJWKClientError:
            return Decision(Verdict.UNAUTHENTICATED, "the token's signing key is not known")
        except jwt.InvalidTokenError as exc:
            return Decision(
                Verdict.UNAUTHENTICATED, f"the token is not valid: {type(exc).__name__}"
            )
        if self._reader_role not in _roles(claims, self._roles_claim):
            return Decision(Verdict.FORBIDDEN, f"decoding needs the {self._reader_role} role")
        return Decision(Verdict.ALLOWED, "oidc")

    def _verify(self, token: str) -> dict[str, Any]:
        assert self._jwks is not None
        key = self._jwks.get_signing_key_from_jwt(token)
        return jwt.decode(
            token,
            key.key,
            algorithms=ALGORITHMS,
            issuer=self._issuer,
            audience=self._audience,
            options={"require": ["exp", "iss"], "verify_aud": self._audience is not None},
        )
