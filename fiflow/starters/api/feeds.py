"""`/v1/feeds/transactions`: FIs without a NATS client post transactions to the stream.

The body is NDJSON: one transaction per line, as a direct publisher would put in one message
(docs/feeds.md, "The stream"). Every line is checked first; one bad line refuses the whole
request (422, naming the line and the problem) and publishes nothing. The answer comes only
after the stream acknowledged every line, so a 202 means the transactions are stored. Posting
the same batch again (a lost answer) stores nothing twice: the stream drops a transaction ID
it holds from the last 10 minutes, and the consumer starts one alert per transaction anyway.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from fiflow.integrations.nats_stream import (
    InvalidTransaction,
    StreamUnavailable,
    parse_transaction,
    publish_transactions,
)
from fiflow.starters.api.auth import require
from fiflow.starters.api.errors import ApiError
from fiflow.starters.api.openapi import KEYED, errors
from fiflow.starters.api.state import ApiState, api_state

log = logging.getLogger("fiflow.api")
TRANSACTIONS_PATH = "/v1/feeds/transactions"
CONTENT_TYPES = ("application/x-ndjson", "application/jsonl")
# Problems listed per refused request: enough to fix a file, bounded for a garbage one.
PROBLEMS_SHOWN = 20

router = APIRouter(tags=["feeds"], responses=errors(*KEYED))

NDJSON_BODY = {
    "requestBody": {
        "required": True,
        "description": "One transaction (the Transaction schema of docs/feeds.md) as JSON per "
        "line; blank lines are skipped. At most FIFLOW_FEED_INGEST_MAX_LINES lines (1,000) "
        "and FIFLOW_FEED_INGEST_MAX_BYTES bytes (1 MiB).",
        "content": {
            content_type: {
                "schema": {"type": "string"},
                "example": '{"transaction_id": "tx-1", "customer_id": "cust-0001", '
                '"card_last4": "4242", "amount": "12.50", "currency": "USD", '
                '"merchant": "ACME", "mcc": "5411", "country": "US", "card_present": true, '
                '"status": "approved", "occurred_at": "2026-11-25T10:00:00+01:00"}\n',
            }
            for content_type in CONTENT_TYPES
        },
    }
}


class TransactionsAccepted(BaseModel):
    """Every line is stored on the transaction stream; the consumer screens it from there."""

    accepted: int = Field(description="Transactions in the request, all stored.", examples=[2])
    duplicates: int = Field(
        description="Of those, already on the stream (the same transaction_id within the "
        "last 10 minutes): stored once.",
        examples=[0],
    )
    stream: str = Field(description="The stream that holds them.", examples=["FIFLOW_TRANSACTIONS"])
    first_sequence: int = Field(description="The stream sequence of the first.", examples=[41])
    last_sequence: int = Field(description="The stream sequence of the last.", examples=[42])


@router.post(
    TRANSACTIONS_PATH,
    status_code=202,
    response_model=TransactionsAccepted,
    dependencies=[require("system")],
    operation_id="feeds_transactions_publish",
    summary="Publish transactions to the real-time stream (NDJSON)",
    responses=errors(413, 422),
    openapi_extra=NDJSON_BODY,
)
async def post_transactions(
    request: Request, state: ApiState = Depends(api_state)
) -> TransactionsAccepted:
    """Check every line, publish them all, answer once the stream acknowledged each."""
    settings = state.settings
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type not in CONTENT_TYPES:
        raise ApiError(
            422,
            "unsupported_format",
            f"the body's content type must be one of {', '.join(CONTENT_TYPES)}",
        )
    body = await request.body()
    lines = [(n, raw.strip()) for n, raw in enumerate(body.split(b"\n"), start=1)]
    lines = [(n, line) for n, line in lines if line]
    if not lines:
        raise ApiError(422, "empty_batch", "the body holds no transaction")
    if len(lines) > settings.feed_ingest_max_lines:
        raise ApiError(
            413,
            "batch_too_large",
            f"at most {settings.feed_ingest_max_lines} transactions per request, not {len(lines)}",
        )
    messages: list[tuple[str, str, bytes]] = []
    problems: list[dict[str, object]] = []
    for n, line in lines:
        try:
            txn = parse_transaction(line)
        except InvalidTransaction as exc:
            problems.append({"line": n, "problem": str(exc)})
            continue
        messages.append((txn.transaction_id, txn.customer_id, line))
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more lines)" if len(problems) > 1 else ""
        raise ApiError(
            422,
            "invalid_transaction",
            f"line {first['line']}: {first['problem']}{more}; nothing was published",
            problems[:PROBLEMS_SHOWN],
        )
    js = await state.feed_stream()
    try:
        published = await publish_transactions(js, settings, messages)
    except StreamUnavailable as exc:
        log.warning("feed ingest: %s", exc)
        raise ApiError(
            503, "stream_unavailable", "the transaction stream did not store the batch; retry"
        ) from None
    log.info(
        "feed ingest: %d transactions stored (%d duplicates), stream sequences %d-%d",
        published.count,
        published.duplicates,
        published.first_sequence,
        published.last_sequence,
    )
    return TransactionsAccepted(
        accepted=published.count,
        duplicates=published.duplicates,
        stream=settings.feed_stream,
        first_sequence=published.first_sequence,
        last_sequence=published.last_sequence,
    )
