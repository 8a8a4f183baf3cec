"""`/v1/feeds/batches`: the FI's systems upload transaction files; ops follow their screening.

The body is the file itself (`text/csv` or `application/vnd.apache.parquet`), streamed into
the content-addressed store while it is hashed, so a large upload never sits in memory. The
same file twice is one batch: the second upload answers 200 with `duplicate: true`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from fiflow.domain.rules import RuleSetError
from fiflow.integrations.batch_files import (
    CONTENT_TYPES,
    SOURCE_NAME,
    IncomingFile,
    TooLarge,
    load_feed_sources,
)
from fiflow.integrations.batch_intake import accept
from fiflow.integrations.batch_store import BatchRecord, BatchState, BatchStore, Reject
from fiflow.starters.api.auth import require
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.limits import BodyTooLarge
from fiflow.starters.api.openapi import KEYED, PARAMS, UPSTREAM, errors
from fiflow.starters.api.state import ApiState, api_state

log = logging.getLogger("fiflow.api")
UPLOAD_PATH = "/v1/feeds/batches"
BATCH_ID = r"^b[0-9a-f]{32}$"
REJECTS_SHOWN = 100
router = APIRouter(prefix=UPLOAD_PATH, tags=["feeds"], responses=errors(*KEYED))

_BINARY = {"schema": {"type": "string", "format": "binary"}}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The file itself: CSV with a header line, or Parquet. Columns as the "
        'source\'s mapping says (docs/feeds.md, "Batch files").',
        "content": {content_type: _BINARY for content_type in CONTENT_TYPES},
    }
}


class BatchAccepted(BaseModel):
    """The file is stored and its batch runs (or ran: a duplicate)."""

    batch_id: str = Field(
        description="The batch's ID, from the file's SHA-256.",
        examples=["b3d90e5c4e102ce646e87e446da9e4b86"],
    )
    status_url: str = Field(
        description="Where to follow the batch.",
        examples=["/v1/feeds/batches/b3d90e5c4e102ce646e87e446da9e4b86"],
    )
    duplicate: bool = Field(description="The same file was uploaded before: one batch.")


class BatchView(BaseModel):
    """A batch: where it is, and its counts (final once `state` is completed or failed)."""

    batch_id: str = Field(description="The batch's ID.")
    sha256: str = Field(description="The file's SHA-256 (hex).")
    source: str = Field(description="The source whose column mapping read the file.")
    format: str = Field(description="csv or parquet.")
    size_bytes: int = Field(description="The file's size.")
    state: BatchState = Field(
        description="received, screening, alerting, completed, or failed (an unreadable file)."
    )
    error: str | None = Field(description="Why the file could not be read (failed only).")
    rules_version: str | None = Field(description="The conditions version it was screened with.")
    chunks_total: int | None = Field(description="Chunks to screen; null until the file is read.")
    chunks_done: int = Field(description="Chunks screened.")
    rows_read: int = Field(description="Data rows in the file.")
    rows_rejected: int = Field(description="Malformed rows, set aside with their reasons.")
    rows_matched: int = Field(description="Transactions that met a condition.")
    alerts_planned: int = Field(description="Alerts and notices to start (digests count once).")
    alerts_started: int = Field(description="Of those, started so far.")
    rejected_rows: list[Reject] = Field(
        description=f"The first {REJECTS_SHOWN} rejected rows: line number and reasons."
    )
    created_at: datetime = Field(description="When the file first arrived.")
    updated_at: datetime = Field(description="When the batch last moved.")


@router.post(
    "",
    status_code=202,
    response_model=BatchAccepted,
    dependencies=[require("system")],
    operation_id="feeds_batches_create",
    summary="Upload a transaction file for batch screening",
    responses={
        200: {"model": BatchAccepted, "description": "The same file came before: one batch."},
        **errors(413, 422, *UPSTREAM),
    },
    openapi_extra=UPLOAD_BODY,
)
async def post_batch(
    request: Request,
    response: Response,
    source: str = Query(
        "default", pattern=SOURCE_NAME, description="The file's source (its column mapping)."
    ),
    state: ApiState = Depends(api_state),
) -> BatchAccepted:
    """Store the file and start its batch; the same file again is the same batch."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    fmt = CONTENT_TYPES.get(content_type)
    if fmt is None:
        known = ", ".join(CONTENT_TYPES)
        raise ApiError(422, "unsupported_format", f"the body's content type must be one of {known}")
    settings = state.settings
    try:
        sources = await asyncio.to_thread(load_feed_sources, settings.rules_dir)
    except RuleSetError as exc:
        log.error("feed sources unreadable: %s", exc)
        raise ApiError(503, "rules_unavailable", "the feed sources cannot be read") from None
    if source not in sources.sources:
        known = ", ".join(sorted(sources.sources))
        raise ApiError(422, "unknown_source", f"unknown source {source!r}; known: {known}")
    incoming = await asyncio.to_thread(
        IncomingFile, settings.batch_dir, fmt, settings.batch_max_bytes
    )
    try:
        async for chunk in request.stream():
            await asyncio.to_thread(incoming.write, chunk)
        if incoming.size == 0:
            raise ApiError(422, "empty_file", "the body is empty")
        stored = await asyncio.to_thread(incoming.finish)
    except (TooLarge, BodyTooLarge):
        raise ApiError(
            413, "body_too_large", f"batch files are limited to {settings.batch_max_bytes} bytes"
        ) from None
    finally:
        await asyncio.to_thread(incoming.discard)
    client = await state.client()
    accepted = await accept(
        client, settings, BatchStore(state.engine), stored, source, datetime.now(UTC)
    )
    if accepted.duplicate:
        response.status_code = 200
    batch_id = accepted.batch.batch_id
    return BatchAccepted(
        batch_id=batch_id, status_url=f"{UPLOAD_PATH}/{batch_id}", duplicate=accepted.duplicate
    )


@router.get(
    "/{batch_id}",
    response_model=BatchView,
    dependencies=[require("system", "reviewer", "admin")],
    operation_id="feeds_batches_get",
    summary="Read a batch's progress and result",
    responses=errors(404, *PARAMS),
)
async def get_batch(
    batch_id: str = Path(pattern=BATCH_ID), state: ApiState = Depends(api_state)
) -> BatchView:
    """Progress while it runs; read, rejected, matched and alerted counts when done."""
    store = BatchStore(state.engine)
    batch: BatchRecord | None = await asyncio.to_thread(store.get, batch_id)
    if batch is None:
        raise ApiError(404, "batch_not_found", f"no batch {batch_id}")
    rejects = await asyncio.to_thread(store.rejects, batch_id, REJECTS_SHOWN)
    return BatchView(**batch.model_dump(exclude={"sources_version"}), rejected_rows=rejects)
