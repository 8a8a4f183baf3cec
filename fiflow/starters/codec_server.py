"""`fiflow codec-server`: decodes (and encodes) payloads for the Temporal Web UI and CLI.

It speaks Temporal's remote codec protocol: POST `{endpoint}/decode` and `{endpoint}/encode`
with `{"payloads": [...]}` in protobuf JSON. Every call needs a credential:
- `Authorization: Bearer <token>`: the shared token, or an OIDC access token (the Web UI's
  "pass access token" option) carrying the reader role;
- or the shared token in the path, `/t/<token>/decode`, for a Web UI without login (the
  local dev server's): the endpoint to enter in the UI's codec settings is `…/t/<token>`.
Payloads and tokens are never logged; errors say what failed, not what was in it.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from temporalio.api.common.v1 import Payloads

from fiflow.integrations.codec import EncryptionCodec, KeyRingError
from fiflow.integrations.codec_auth import CodecAuth, Verdict

log = logging.getLogger("fiflow.codec")

MAX_BODY_BYTES = 8 * 1024 * 1024


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def create_codec_app(codec: EncryptionCodec, auth: CodecAuth, cors_origins: list[str]) -> FastAPI:
    """The codec server's ASGI app."""
    app = FastAPI(title="fiflow codec server", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(
            exc.status_code,
            "not_found" if exc.status_code == 404 else "bad_request",
            str(exc.detail),
        )

    async def handle(request: Request, op: str, path_token: str | None) -> Response:
        decision = await auth.check(path_token or _bearer(request))
        if decision.verdict is Verdict.UNAUTHENTICATED:
            return _error(401, "unauthorized", decision.message)
        if decision.verdict is Verdict.FORBIDDEN:
            return _error(403, "forbidden", decision.message)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, "body_too_large", f"bodies are limited to {MAX_BODY_BYTES} bytes")
        payloads = Payloads()
        try:
            json_format.Parse(body or b"{}", payloads)
        except json_format.ParseError:
            return _error(400, "bad_request", "the body is not a JSON Payloads message")
        try:
            if op == "decode":
                result = await codec.decode(payloads.payloads)
            else:
                result = await codec.encode(payloads.payloads)
        except KeyRingError as exc:  # its message names a key id, never content
            return _error(400, "cannot_decode", str(exc))
        except Exception:  # noqa: BLE001 - a corrupt payload must not become a 500 with content
            return _error(400, "cannot_decode", "a payload could not be decoded")
        text = json_format.MessageToJson(Payloads(payloads=result))
        return Response(text, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness, without authentication."""
        return {"status": "ok"}

    @app.post("/{op}")
    async def with_bearer(op: str, request: Request) -> Response:
        """Decode or encode with an `Authorization: Bearer` credential."""
        if op not in ("decode", "encode"):
            return _error(404, "not_found", "POST /decode or /encode")
        return await handle(request, op, None)

    @app.post("/t/{token}/{op}")
    async def with_path_token(token: str, op: str, request: Request) -> Response:
        """Decode or encode with the shared token in the path (a Web UI without login)."""
        if op not in ("decode", "encode"):
            return _error(404, "not_found", "POST /decode or /encode")
        return await handle(request, op, token)

    # Only the Web UI's origin may call from a browser; credentials for its cookie option.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=cors_origins,
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        allow_credentials=True,
        max_age=600,
    )
    return app
