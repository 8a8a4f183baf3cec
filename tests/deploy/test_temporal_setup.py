"""`fiflow temporal setup` on the real dev server: registers a namespace and fiflow's search
attributes, changes nothing the second time, and refuses an attribute of the wrong type."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from fiflow.domain import search_attributes
from fiflow.integrations.codec import new_key
from fiflow.integrations.settings import Settings
from fiflow.starters.schedules import schedules
from fiflow.starters.temporal_setup import SetupError, setup_namespace
from tests.fixtures.temporal import venv_binary

FIFLOW_ATTRIBUTES = sorted(key.name for key in search_attributes.ALL)
KEYWORD = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD


@pytest.fixture(scope="module")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """One real dev server for this module; each test uses namespaces of its own."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


def new_namespace() -> str:
    return f"fiflow-setup-{uuid.uuid4().hex[:10]}"


async def custom_attributes(client: Client, namespace: str) -> dict[str, int]:
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return dict(listed.custom_attributes)


async def test_setup_registers_the_namespace_and_attributes_then_changes_nothing(
    dev_server: WorkflowEnvironment,
) -> None:
    client = dev_server.client
    namespace = new_namespace()

    first = await setup_namespace(client, namespace, retention=timedelta(days=14))
    assert first.namespace_outcome == "registered"
    assert sorted(first.added) == FIFLOW_ATTRIBUTES
    assert first.present == [] and first.ready

    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    retention = described.config.workflow_execution_retention_ttl.ToTimedelta()
    assert retention == timedelta(days=14)
    listed = await custom_attributes(client, namespace)
    assert {name: listed.get(name) for name in FIFLOW_ATTRIBUTES} == dict.fromkeys(
        FIFLOW_ATTRIBUTES, KEYWORD
    )

    # A deploy runs it again: nothing is added, the namespace keeps its own retention.
    second = await setup_namespace(client, namespace, retention=timedelta(days=90))
    assert second.namespace_outcome == "exists"
    assert second.retention == timedelta(days=14)
    assert second.added == [] and sorted(second.present) == FIFLOW_ATTRIBUTES
    assert await custom_attributes(client, namespace) == listed


async def register_with(client: Client, namespace: str, attributes: dict[str, int]) -> None:
    """A namespace prepared by hand (or by an older fiflow) with these attributes only."""
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    add = AddSearchAttributesRequest(namespace=namespace, search_attributes=attributes)
    deadline = time.monotonic() + 30
    while True:  # until the namespace cache knows the new namespace
        try:
            await client.operator_service.add_search_attributes(add)
            return
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


async def test_check_changes_nothing_and_a_half_prepared_namespace_gets_only_what_it_lacks(
    dev_server: WorkflowEnvironment,
) -> None:
    client = dev_server.client
    namespace = new_namespace()

    missing = await setup_namespace(client, namespace, check_only=True)
    assert missing.namespace_outcome == "missing" and not missing.ready
    assert sorted(missing.missing) == FIFLOW_ATTRIBUTES
    with pytest.raises(RPCError) as raised:  # --check registered nothing
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
    assert raised.value.status == RPCStatusCode.NOT_FOUND

    older = ["AlertId", "AlertType", "Channel"]
    await register_with(client, namespace, dict.fromkeys(older, KEYWORD))
    checked = await setup_namespace(client, namespace, check_only=True)
    assert sorted(checked.present) == older and not checked.ready
    assert sorted(checked.missing) == sorted(set(FIFLOW_ATTRIBUTES) - set(older))

    report = await setup_namespace(client, namespace)
    assert report.namespace_outcome == "exists"
    assert sorted(report.added) == sorted(set(FIFLOW_ATTRIBUTES) - set(older))
    assert sorted(report.present) == older
    assert (await setup_namespace(client, namespace, check_only=True)).ready


async def test_an_attribute_of_another_type_is_a_conflict_named_in_the_error(
    dev_server: WorkflowEnvironment,
) -> None:
    client = dev_server.client
    namespace = new_namespace()
    await register_with(client, namespace, {"AlertId": IndexedValueType.INDEXED_VALUE_TYPE_TEXT})

    with pytest.raises(SetupError, match="AlertId is INDEXED_VALUE_TYPE_TEXT, fiflow needs"):
        await setup_namespace(client, namespace)
    # Nothing was added around the conflict: an operator resolves it first.
    assert set(await custom_attributes(client, namespace)) & set(FIFLOW_ATTRIBUTES) == {"AlertId"}


PAYLOAD_KEY = new_key()
SCHEDULES = tuple(schedules(Settings()))  # every schedule fiflow runs


def run_cli(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TEMPORAL_", "FIFLOW_"))
    }
    env["TEMPORAL_ADDRESS"] = address
    # Applying the schedules encodes their workflow inputs with the payload codec.
    env["FIFLOW_PAYLOAD_KEYS"] = PAYLOAD_KEY
    return subprocess.run(
        [sys.executable, "-m", "fiflow.starters.cli", "temporal", "setup", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_cli_prepares_a_namespace_idempotently_and_check_exits_1_when_missing(
    dev_server: WorkflowEnvironment,
) -> None:
    address = dev_server.client.service_client.config.target_host
    namespace = new_namespace()

    checked = run_cli(address, "--namespace", namespace, "--check")
    assert checked.returncode == 1, checked.stderr
    assert f"namespace {namespace}: missing" in checked.stdout

    first = run_cli(address, "--namespace", namespace, "--retention-days", "7")
    assert first.returncode == 0, first.stderr
    assert f"namespace {namespace}: registered (retention 7 days)" in first.stdout
    assert "search attribute AlertId: added" in first.stdout

    second = run_cli(address, "--namespace", namespace)
    assert second.returncode == 0, second.stderr
    assert f"namespace {namespace}: exists (retention 7 days)" in second.stdout
    assert "added" not in second.stdout
    assert all(f"search attribute {name}: exists" in second.stdout for name in FIFLOW_ATTRIBUTES)

    assert run_cli(address, "--namespace", namespace, "--check").returncode == 0
    listed = await custom_attributes(dev_server.client, namespace)
    assert all(listed.get(name) == KEYWORD for name in FIFLOW_ATTRIBUTES)


def test_an_unreachable_temporal_is_a_message_not_a_traceback() -> None:
    result = run_cli("127.0.0.1:1", "--wait-seconds", "0")
    assert result.returncode == 1
    assert result.stderr.startswith("fiflow: temporal setup failed:")
    assert "Traceback" not in result.stderr


async def test_setup_applies_the_schedules_idempotently_and_check_reports_them(
    dev_server: WorkflowEnvironment,
) -> None:
    address = dev_server.client.service_client.config.target_host
    namespace = new_namespace()

    bare = run_cli(address, "--namespace", namespace, "--no-schedules")
    assert bare.returncode == 0, bare.stderr
    assert "schedule" not in bare.stdout
    # The namespace is ready but its schedules are not: --check says which.
    checked = run_cli(address, "--namespace", namespace, "--check")
    assert checked.returncode == 1, checked.stderr
    assert all(f"schedule {sid}: missing" in checked.stdout for sid in SCHEDULES)

    first = run_cli(address, "--namespace", namespace)
    assert first.returncode == 0, first.stderr
    assert all(f"schedule {sid}: created" in first.stdout for sid in SCHEDULES)
    # A paused schedule stays paused across the next deploy's setup.
    client = await Client.connect(address, namespace=namespace)
    await client.get_schedule_handle("fiflow-retention").pause(note="paused by an operator")
    second = run_cli(address, "--namespace", namespace)
    assert second.returncode == 0, second.stderr
    assert all(f"schedule {sid}: updated" in second.stdout for sid in SCHEDULES)
    described = await client.get_schedule_handle("fiflow-retention").describe()
    assert described.schedule.state.paused
    ids = sorted([s.id async for s in await client.list_schedules()])
    assert ids == sorted(SCHEDULES)

    ready = run_cli(address, "--namespace", namespace, "--check")
    assert ready.returncode == 0, ready.stderr
    assert all(f"schedule {sid}: exists" in ready.stdout for sid in SCHEDULES)


def test_schedules_without_payload_keys_are_a_configuration_error() -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TEMPORAL_", "FIFLOW_"))
    }
    env["TEMPORAL_ADDRESS"] = "127.0.0.1:1"
    env["FIFLOW_PAYLOAD_KEYS"] = "not-a-key"
    result = subprocess.run(
        [sys.executable, "-m", "fiflow.starters.cli", "temporal", "setup", "--wait-seconds", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("fiflow: configuration error:")
    assert "--no-schedules" in result.stderr and "not-a-key" not in result.stderr
