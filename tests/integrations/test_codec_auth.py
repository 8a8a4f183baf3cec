"""The codec server's authentication: the shared token, and OIDC tokens verified against a real
JWKS endpoint served over HTTP, with the reader role required; plus its HTTP surface."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf import json_format
from jwt.algorithms import RSAAlgorithm
from temporalio.api.common.v1 import Payloads
from temporalio.contrib.pydantic import pydantic_data_converter

from fiflow.integrations.codec import EncryptionCodec, KeyRing, new_key
from fiflow.integrations.codec_auth import CodecAuth, Verdict
from fiflow.integrations.settings import Settings
from fiflow.starters.codec_server import create_codec_app

AUDIENCE = "temporal-ui"
ROLE = "fiflow-codec-reader"


class Issuer:
    """A signing key and the JWKS document an OIDC issuer would publish for it."""

    def __init__(self, url: str):
        self.url = url
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": AUDIENCE, "sub": "staff-17", "iat": now, "exp": now + 300}
        body.update(claims)
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    """A real HTTP server on loopback publishing /.well-known/jwks.json."""
    holder: dict[str, Issuer] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if self.path != "/.well-known/jwks.json":
                self.send_error(404)
                return
            body = json.dumps(holder["issuer"].jwks).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["issuer"] = Issuer(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["issuer"]
    finally:
        server.shutdown()


def oidc_settings(issuer: Issuer, **kw: Any) -> Settings:
    return Settings(codec_oidc_issuer=issuer.url, codec_oidc_audience=AUDIENCE, **kw)


async def test_an_oidc_token_with_the_reader_role_is_allowed(issuer: Issuer) -> None:
    auth = CodecAuth(oidc_settings(issuer))
    decision = await auth.check(issuer.token(roles=[ROLE, "other"]))
    assert decision.verdict is Verdict.ALLOWED


async def test_a_nested_roles_claim_is_read_by_its_path(issuer: Issuer) -> None:
    auth = CodecAuth(oidc_settings(issuer, codec_oidc_roles_claim="realm_access.roles"))
    allowed = await auth.check(issuer.token(realm_access={"roles": [ROLE]}))
    assert allowed.verdict is Verdict.ALLOWED
    assert (await auth.check(issuer.token(roles=[ROLE]))).verdict is Verdict.FORBIDDEN


@pytest.mark.parametrize(
    ("claims", "verdict"),
    [
        ({"roles": ["fiflow-admin"]}, Verdict.FORBIDDEN),
        ({}, Verdict.FORBIDDEN),
        ({"roles": [ROLE], "exp": int(time.time()) - 60}, Verdict.UNAUTHENTICATED),
        ({"roles": [ROLE], "aud": "someone-else"}, Verdict.UNAUTHENTICATED),
        ({"roles": [ROLE], "iss": "http://127.0.0.1:1"}, Verdict.UNAUTHENTICATED),
    ],
)
async def test_tokens_without_the_role_or_not_valid_here_are_refused(
    issuer: Issuer, claims: dict[str, Any], verdict: Verdict
) -> None:
    auth = CodecAuth(oidc_settings(issuer))
    decision = await auth.check(issuer.token(**claims))
    assert decision.verdict is verdict


async def test_a_token_signed_by_another_key_or_with_hs256_is_refused(issuer: Issuer) -> None:
    auth = CodecAuth(oidc_settings(issuer))
    stranger = Issuer(issuer.url)  # same claims, a key the issuer never published
    assert (await auth.check(stranger.token(roles=[ROLE]))).verdict is Verdict.UNAUTHENTICATED
    forged = jwt.encode(
        {"iss": issuer.url, "aud": AUDIENCE, "exp": int(time.time()) + 60, "roles": [ROLE]},
        "guessable-secret-of-32-bytes-long!!",
        algorithm="HS256",
        headers={"kid": "k1"},
    )
    assert (await auth.check(forged)).verdict is Verdict.UNAUTHENTICATED


async def test_the_shared_token_and_nothing_else() -> None:
    auth = CodecAuth(Settings(codec_token="shared-token-123"))
    assert (await auth.check("shared-token-123")).verdict is Verdict.ALLOWED
    assert (await auth.check("shared-token-12")).verdict is Verdict.UNAUTHENTICATED
    assert (await auth.check(None)).verdict is Verdict.UNAUTHENTICATED
    assert not CodecAuth(Settings()).configured


async def test_the_http_surface(issuer: Issuer) -> None:
    codec = EncryptionCodec(KeyRing.parse(new_key()))
    auth = CodecAuth(oidc_settings(issuer, codec_token="shared-token-123"))
    app = create_codec_app(codec, auth, ["http://127.0.0.1:8233"])
    [clear] = pydantic_data_converter.payload_converter.to_payloads([{"merchant": "ACME"}])
    sealed = await codec.encode([clear])
    body = json_format.MessageToJson(Payloads(payloads=sealed))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://codec") as http:
        reader = {"Authorization": f"Bearer {issuer.token(roles=[ROLE])}"}
        ok = await http.post("/decode", content=body, headers=reader)
        assert ok.status_code == 200
        [decoded] = json_format.Parse(ok.text, Payloads()).payloads
        assert decoded == clear

        not_reader = {"Authorization": f"Bearer {issuer.token(roles=['teller'])}"}
        refused = await http.post("/decode", content=body, headers=not_reader)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"

        garbage = await http.post("/decode", content=b"{not json", headers=reader)
        assert garbage.status_code == 400 and garbage.json()["code"] == "bad_request"

        other_ring = create_codec_app(EncryptionCodec(KeyRing.parse(new_key())), auth, [])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other_ring), base_url="http://codec"
        ) as other:
            wrong_key = await other.post("/decode", content=body, headers=reader)
        assert wrong_key.status_code == 400 and wrong_key.json()["code"] == "cannot_decode"
        assert "ACME" not in wrong_key.text

        encoded = await http.post("/t/shared-token-123/encode", content=ok.text)
        assert encoded.status_code == 200
        [again] = json_format.Parse(encoded.text, Payloads()).payloads
        assert again.metadata["encoding"] == b"binary/encrypted"

        assert (await http.post("/nope", content=body, headers=reader)).status_code == 404
        assert (await http.get("/healthz")).json() == {"status": "ok"}
