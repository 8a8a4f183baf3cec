"""`/v1/feeds/batches` through the real app, a real time-skipping Temporal server and the real
batch activities: upload, duplicate, progress and result, and every refusal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from fiflow.integrations.database import upgrade_database
from fiflow.integrations.settings import Settings
from fiflow.starters.api.app import create_app
from tests.workflows.batch_harness import (
    STAND_IN_TYPES,
    BatchHarness,
    batch_harness,
    batch_settings,
    csv_bytes,
    txn,
)

SYSTEM = {"X-API-Key": "local-system-key"}
CSV = {**SYSTEM, "Content-Type": "text/csv"}


@pytest.fixture
async def bh(
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> BatchHarness:
    request.node.replay_skip_types = STAND_IN_TYPES
    settings = batch_settings(tmp_path, task_queue, batch_max_bytes=4096)
    return batch_harness(time_skipping_env.client, settings)


@pytest.fixture
async def api(bh: BatchHarness) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(bh.settings, client=bh.client)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def _finished(api: httpx.AsyncClient, url: str) -> dict:
    deadline = time.monotonic() + 20
    while True:
        view = (await api.get(url, headers=SYSTEM)).json()
        if view["state"] in ("completed", "failed"):
            return view
        assert time.monotonic() < deadline, view
        await asyncio.sleep(0.05)


async def test_upload_screen_and_read_the_result_and_the_same_file_is_one_batch(
    api: httpx.AsyncClient, bh: BatchHarness
) -> None:
    data = csv_bytes(
        [
            txn("u-1", "cust-U", amount="6000.00", card_present="false"),
            txn("u-2", "cust-U", amount="abc"),
            txn("u-3", "cust-U"),
        ]
    )
    async with bh.worker():
        first = await api.post("/v1/feeds/batches", content=data, headers=CSV)
        assert first.status_code == 202, first.text
        body = first.json()
        assert body["duplicate"] is False
        assert body["status_url"] == f"/v1/feeds/batches/{body['batch_id']}"
        view = await _finished(api, body["status_url"])
        again = await api.post("/v1/feeds/batches", content=data, headers=CSV)

    assert (again.status_code, again.json()) == (200, {**body, "duplicate": True})
    assert view["state"] == "completed"
    counts = [view[k] for k in ("rows_read", "rows_rejected", "rows_matched", "alerts_started")]
    assert counts == [3, 1, 1, 1]
    assert view["chunks_done"] == view["chunks_total"] == 1
    assert view["rejected_rows"] == [
        {"line": 3, "reason": "amount is not a decimal number with at most 4 decimal places"}
    ]
    assert [a.request.source_event_id for a in bh.started.fraud] == ["u-1"]
    # A reviewer reads it too; a channel may not.
    reviewer = await api.get(body["status_url"], headers={"X-API-Key": "local-reviewer-key"})
    channel = await api.get(body["status_url"], headers={"X-API-Key": "local-channel-key"})
    assert (reviewer.status_code, channel.status_code) == (200, 403)


async def test_an_unreadable_file_fails_its_batch_and_is_kept(
    api: httpx.AsyncClient, bh: BatchHarness
) -> None:
    data = b"id,amount\n1,2\n"  # not the schema: no mapping reads it
    async with bh.worker():
        r = await api.post("/v1/feeds/batches", content=data, headers=CSV)
        view = await _finished(api, r.json()["status_url"])
    assert view["state"] == "failed"
    assert view["error"].startswith("the file lacks column(s): transaction_id, customer_id")
    assert (bh.settings.batch_dir / f"{view['sha256']}.csv").read_bytes() == data


REFUSED = [
    ("?source=nowhere", CSV, b"a\n", 422, "unknown_source"),
    ("?source=Bad-Name", CSV, b"a\n", 422, "invalid_request"),
    ("", {**SYSTEM, "Content-Type": "application/json"}, b"{}", 422, "unsupported_format"),
    ("", SYSTEM, b"a\n", 422, "unsupported_format"),
    ("", CSV, b"", 422, "empty_file"),
    ("", CSV, b"x" * 5000, 413, "body_too_large"),
    ("", {"X-API-Key": "local-channel-key", "Content-Type": "text/csv"}, b"a\n", 403, "forbidden"),
]  # fmt: skip


@pytest.fixture(scope="module")
def plain_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for the refusals, which never reach Temporal."""
    tmp = tmp_path_factory.mktemp("batches-api")
    settings = batch_settings(tmp, "unused", batch_max_bytes=4096)
    upgrade_database(settings.database_url)
    return settings


@pytest.fixture
async def plain_api(plain_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(plain_settings, client=cast(Client, object()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def test_refusals_keep_nothing(
    plain_api: httpx.AsyncClient, plain_settings: Settings
) -> None:
    for query, headers, body, status, code in REFUSED:
        r = await plain_api.post(f"/v1/feeds/batches{query}", content=body, headers=headers)
        assert (r.status_code, r.json()["code"]) == (status, code), (query, headers, r.text)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 1000  # no Content-Length: the limit is found while reading

    r = await plain_api.post("/v1/feeds/batches", content=chunks(), headers=CSV)
    assert (r.status_code, r.json()["code"]) == (413, "body_too_large")
    assert "4096 bytes" in r.json()["message"]
    # Nothing refused is kept.
    assert not [p for p in plain_settings.batch_dir.glob("*") if p.is_file()]


async def test_an_unknown_batch_is_404(plain_api: httpx.AsyncClient) -> None:
    r = await plain_api.get("/v1/feeds/batches/b" + "f" * 32, headers=SYSTEM)
    assert (r.status_code, r.json()["code"]) == (404, "batch_not_found")
    assert (await plain_api.get("/v1/feeds/batches/nope", headers=SYSTEM)).status_code == 422
