"""`POST /v1/feeds/transactions` through the real app onto a real nats-server: what is stored,
what is refused (and then nothing is stored), and the answer while NATS is down."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from fiflow.integrations.nats_stream import partition_of
from fiflow.integrations.settings import Settings
from fiflow.starters.api.app import create_app
from tests.nats_server import nats_server
from tests.sandbox.servers import free_port

URL = "/v1/feeds/transactions"
SYSTEM = {"X-API-Key": "local-system-key", "Content-Type": "application/x-ndjson"}


def line(transaction_id: str, **changes: Any) -> str:
    body: dict[str, Any] = {
        "transaction_id": transaction_id,
        "customer_id": "cust-0042",
        "card_last4": "4242",
        "amount": "19.99",
        "currency": "EUR",
        "merchant": "Bakery",
        "mcc": "5462",
        "country": "FR",
        "card_present": True,
        "status": "approved",
        "occurred_at": "2026-11-25T10:00:00+01:00",
    }
    body.update(changes)
    return json.dumps(body)


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with nats_server(tmp_path_factory.mktemp("nats")) as url:
        yield url


def _settings(tmp_path: Path, nats_url: str) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        nats_url=nats_url,
        feed_ingest_max_lines=5,
        feed_ingest_max_bytes=4096,
    )


@pytest.fixture
async def api(tmp_path: Path, nats_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(_settings(tmp_path, nats_url))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client
    await app.state.fiflow.close()


async def stored(nats_url: str) -> list[bytes]:
    """Every message on the transaction stream, in order."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("FIFLOW_TRANSACTIONS")
        first, last = info.state.first_seq, info.state.last_seq
        return [
            (await js.get_msg("FIFLOW_TRANSACTIONS", seq=n)).data for n in range(first, last + 1)
        ]
    finally:
        await nc.close()


async def test_lines_are_stored_in_order_once_and_acknowledged(
    api: httpx.AsyncClient, nats_url: str
) -> None:
    body = f"{line('tx-a1')}\n\n{line('tx-a2')}\n"  # a blank line is skipped
    r = await api.post(URL, content=body, headers=SYSTEM)
    assert r.status_code == 202, r.text
    data = r.json()
    assert (data["accepted"], data["duplicates"], data["stream"]) == (2, 0, "FIFLOW_TRANSACTIONS")
    assert data["last_sequence"] == data["first_sequence"] + 1
    # A retried request (the answer was lost) stores nothing twice.
    again = await api.post(URL, content=body, headers=SYSTEM)
    assert again.status_code == 202 and again.json()["duplicates"] == 2
    messages = await stored(nats_url)
    ids = [json.loads(m)["transaction_id"] for m in messages]
    assert ids[-2:] == ["tx-a1", "tx-a2"] and ids.count("tx-a1") == 1
    # Published to the customer's partition, as a direct publisher would (documented hash).
    nc = await nats.connect(nats_url)
    try:
        last = await nc.jetstream().get_msg("FIFLOW_TRANSACTIONS", seq=data["last_sequence"])
    finally:
        await nc.close()
    assert last.subject == f"fiflow.transactions.card.{partition_of('cust-0042', 32)}"


async def test_one_bad_line_refuses_the_request_and_stores_nothing(
    api: httpx.AsyncClient, nats_url: str
) -> None:
    await api.post(URL, content=line("tx-b0"), headers=SYSTEM)  # the stream exists
    before = len(await stored(nats_url))
    body = "\n".join(
        [line("tx-b1"), "{not json", line("tx-b3", card_last4="4111111111111111"), line("tx-b4")]
    )
    r = await api.post(URL, content=body, headers=SYSTEM)
    assert r.status_code == 422, r.text
    error = r.json()
    assert error["code"] == "invalid_transaction"
    assert error["message"].startswith("line 2: ")
    assert [d["line"] for d in error["details"]] == [2, 3]
    assert "card_last4" in error["details"][1]["problem"]
    assert "4111111111111111" not in r.text  # problems, never the values
    assert len(await stored(nats_url)) == before


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ("", SYSTEM, 422, "empty_batch"),
        (line("tx-c1"), {**SYSTEM, "Content-Type": "application/json"}, 422, "unsupported_format"),
        ("\n".join(line(f"tx-d{n}") for n in range(6)), SYSTEM, 413, "batch_too_large"),
        (line("tx-e1", merchant="x" * 200) + "\n" + "x" * 5000, SYSTEM, 413, "body_too_large"),
        (line("tx-f1"), {"Content-Type": "application/x-ndjson", "X-API-Key": "local-channel-key"},
         403, "forbidden"),
    ],
    ids=["empty", "json", "too-many-lines", "too-many-bytes", "channel-key"],
)  # fmt: skip
async def test_refusals(
    api: httpx.AsyncClient, body: str, headers: dict[str, str], status: int, code: str
) -> None:
    r = await api.post(URL, content=body, headers=headers)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text


async def test_no_stream_is_a_503_the_client_can_retry(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, f"nats://127.0.0.1:{free_port()}"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        r = await client.post(URL, content=line("tx-g1"), headers=SYSTEM)
    assert (r.status_code, r.json()["code"]) == (503, "stream_unavailable")
