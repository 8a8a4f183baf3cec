"""OIDC bearer tokens verified against the issuer's JWKS: shared by the codec server and the API."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt

# Asymmetric algorithms only: an HS256 token would be "signed" with a public key.
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class InvalidToken(Exception):
    """A token that does not verify; the message is safe to return (no token, no claim value)."""


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The claim at a dotted path (`realm_access.roles`), or None."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def claim_values(claims: dict[str, Any], path: str) -> set[str]:
    """A roles-like claim as a set: a list, or a space-separated string (OAuth `scope` style)."""
    value = claim_at(claims, path)
    if isinstance(value, str):
        return set(value.split())
    if isinstance(value, list):
        return {str(v) for v in value}
    return set()


class OidcVerifier:
    """Verifies access tokens of one issuer (signature, `iss`, `exp`, and `aud` when configured)."""

    def __init__(self, issuer: str, audience: str | None = None, jwks_url: str | None = None):
        self.issuer = issuer
        self.audience = audience
        url = jwks_url or (issuer.rstrip("/") + "/.well-known/jwks.json")
        # Keys are cached, and fetched again when a token names an unknown key id.
        self._jwks = jwt.PyJWKClient(url, cache_keys=True, lifespan=600, timeout=5)

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; InvalidToken when it does not verify."""
        try:
            # The JWKS fetch is blocking I/O: keep it off the event loop.
            return await asyncio.to_thread(self._verify, token)
        except jwt.PyJWKClientError:
            raise InvalidToken("the token's signing key is not known") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"the token is not valid: {type(exc).__name__}") from None

    def _verify(self, token: str) -> dict[str, Any]:
        key = self._jwks.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=ALGORITHMS,
            issuer=self.issuer,
            audience=self.audience,
            options={"require": ["exp", "iss"], "verify_aud": self.audience is not None},
        )
        return claims
