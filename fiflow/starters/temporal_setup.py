"""`fiflow temporal setup`: prepare a Temporal namespace on a real cluster for fiflow.

`fiflow up` starts a dev server that registers fiflow's search attributes itself; a real
cluster needs the namespace registered (with a retention for closed runs) and the custom
search attributes added once, by an operator or a deploy job. Both steps are idempotent:
what exists is left as it is, so the job runs on every deploy.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import typer
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile
from temporalio.service import RPCError, RPCStatusCode

from fiflow.domain import search_attributes
from fiflow.integrations.temporal import DEFAULT_TARGET
from fiflow.starters.cli_support import exit_now, fail

temporal_app = typer.Typer(help="The Temporal cluster fiflow runs on.", no_args_is_help=True)

DEFAULT_RETENTION_DAYS = 30
# A namespace registered a moment ago is unknown to the other frontends until their
# namespace cache refreshes (10 s by default), and a server just started may still answer
# UNAVAILABLE: calls are retried this long.
NAMESPACE_CACHE_WAIT_S = 60.0

T = TypeVar("T")


class SetupError(Exception):
    """The namespace cannot be made ready for fiflow (a conflicting attribute, say)."""


@dataclass
class SetupReport:
    """What setting up a namespace found and did."""

    namespace: str
    namespace_outcome: str  # registered | exists | missing (check only)
    retention: timedelta | None = None
    added: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # check only: what setup would add
    schedules: dict[str, str] = field(default_factory=dict)  # ID: created|updated|exists|missing

    @property
    def ready(self) -> bool:
        """Whether the namespace and every attribute exist."""
        return (
            self.namespace_outcome != "missing"
            and not self.missing
            and "missing" not in self.schedules.values()
        )


def _days(retention: timedelta | None) -> str:
    if retention is None:
        return "unknown"
    days = retention / timedelta(days=1)
    return f"{days:g} days"


def _type_name(kind: int) -> str:
    return IndexedValueType.Name(IndexedValueType.ValueType(kind))


# A server still starting answers UNAVAILABLE; a namespace registered a moment ago is
# NOT_FOUND until the namespace cache refreshes. Both pass.
PASSING = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.NOT_FOUND})


async def _retry(
    call: Callable[[], Awaitable[T]], deadline: float, passing: frozenset[RPCStatusCode] = PASSING
) -> T:
    """Run `call`, retrying the passing errors until `deadline`."""
    while True:
        try:
            return await call()
        except RPCError as exc:
            if exc.status not in passing or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(0.5)


async def _ensure_namespace(
    client: Client, namespace: str, retention: timedelta, check_only: bool, deadline: float
) -> tuple[str, timedelta | None]:
    unavailable = frozenset({RPCStatusCode.UNAVAILABLE})
    try:
        described = await _retry(
            functools.partial(
                client.workflow_service.describe_namespace,
                DescribeNamespaceRequest(namespace=namespace),
            ),
            deadline,
            unavailable,
        )
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    else:
        config = described.config
        if not config.HasField("workflow_execution_retention_ttl"):
            return "exists", None
        return "exists", config.workflow_execution_retention_ttl.ToTimedelta()
    if check_only:
        return "missing", None
    period = Duration()
    period.FromTimedelta(retention)
    request = RegisterNamespaceRequest(
        namespace=namespace,
        description="fiflow: FI customer processes",
        workflow_execution_retention_period=period,
    )
    try:
        await _retry(
            functools.partial(client.workflow_service.register_namespace, request),
            deadline,
            unavailable,
        )
    except RPCError as exc:
        # Another setup job (a second replica, a retried hook) registered it first.
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
        return "exists", None
    return "registered", retention


async def _custom_attributes(client: Client, namespace: str, deadline: float) -> dict[str, int]:
    listed = await _retry(
        lambda: client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        ),
        deadline,
    )
    return dict(listed.custom_attributes)


async def setup_namespace(
    client: Client,
    namespace: str,
    *,
    retention: timedelta = timedelta(days=DEFAULT_RETENTION_DAYS),
    check_only: bool = False,
    cache_wait_s: float = NAMESPACE_CACHE_WAIT_S,
) -> SetupReport:
    """Register `namespace` if missing, then add each of fiflow's search attributes it lacks.

    An attribute that exists with another type is a conflict (SetupError): fiflow's
    workflows would fail to upsert it, and changing a type would need a new name.
    `check_only` changes nothing and reports what is missing.
    """
    deadline = time.monotonic() + cache_wait_s
    outcome, kept = await _ensure_namespace(client, namespace, retention, check_only, deadline)
    report = SetupReport(namespace=namespace, namespace_outcome=outcome, retention=kept)
    wanted = {key.name: int(key.indexed_value_type) for key in search_attributes.ALL}
    if outcome == "missing":
        report.missing = sorted(wanted)
        return report
    existing = await _custom_attributes(client, namespace, deadline)
    conflicts = [
        f"{name} is {_type_name(existing[name])}, fiflow needs {_type_name(kind)}"
        for name, kind in wanted.items()
        if name in existing and existing[name] != kind
    ]
    if conflicts:
        raise SetupError(f"namespace {namespace}: " + "; ".join(conflicts))
    report.present = [name for name in wanted if name in existing]
    missing = [name for name in wanted if name not in existing]
    if check_only:
        report.missing = missing
        return report
    # One attribute per call: some servers register only the first of several (the same
    # reason `fiflow up` adds them one at a time), and a partial earlier run resumes cleanly.
    for name in missing:
        request = AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={name: IndexedValueType.ValueType(wanted[name])},
        )
        try:
            await _retry(
                functools.partial(client.operator_service.add_search_attributes, request),
                deadline,
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.ALREADY_EXISTS:  # another job added it meanwhile
                raise
        report.added.append(name)
    after = await _custom_attributes(client, namespace, deadline)
    still = [name for name in wanted if after.get(name) != wanted[name]]
    if still:
        raise SetupError(f"namespace {namespace}: not registered after adding: {', '.join(still)}")
    return report


async def connect_for_setup(namespace: str | None, wait_s: float) -> tuple[Client, str]:
    """A plain client from Temporal's environment config (no payload codec: none is needed).

    Retries until Temporal answers or `wait_s` passes: a deploy job may start before it.
    """
    config = dict(ClientConfigProfile.load().to_client_connect_config())
    target = str(config.pop("target_host", None) or DEFAULT_TARGET)
    chosen = namespace or str(config.get("namespace") or "default")
    config["namespace"] = chosen
    deadline = time.monotonic() + wait_s
    while True:
        try:
            client = await Client.connect(target, **config)  # type: ignore[arg-type]
            return client, chosen
        except RuntimeError:
            if time.monotonic() >= deadline:
                raise
        await asyncio.sleep(1.0)


def describe(report: SetupReport) -> list[str]:
    """The lines `fiflow temporal setup` prints."""
    lines = [f"namespace {report.namespace}: {report.namespace_outcome}"]
    if report.namespace_outcome != "missing":
        lines[0] += f" (retention {_days(report.retention)})"
    lines += [f"search attribute {name}: added" for name in report.added]
    lines += [f"search attribute {name}: exists" for name in report.present]
    lines += [f"search attribute {name}: missing" for name in report.missing]
    lines += [f"schedule {sid}: {outcome}" for sid, outcome in report.schedules.items()]
    return lines


@temporal_app.command("setup")
def setup(
    namespace: str | None = typer.Option(
        None, help="The namespace (default: TEMPORAL_NAMESPACE or the profile's, else default)."
    ),
    retention_days: float = typer.Option(
        DEFAULT_RETENTION_DAYS,
        min=1,
        help="How long closed runs are kept, for a namespace this registers (an existing "
        "namespace keeps its own).",
    ),
    check: bool = typer.Option(
        False, "--check", help="Change nothing; exit 1 if anything is missing."
    ),
    wait_seconds: float = typer.Option(
        60, min=0, help="How long to wait for Temporal to answer before giving up."
    ),
    with_schedules: bool = typer.Option(
        True,
        "--schedules/--no-schedules",
        help="Also apply fiflow's Temporal Schedules (as `fiflow schedules apply`; needs the "
        "payload keys); with --check, report the missing ones.",
    ),
) -> None:
    """Register the namespace if missing, add fiflow's search attributes and apply its
    schedules. Idempotent.

    Exit codes: 0 ready; 1 something is missing (--check), conflicts, or Temporal failed or
    cannot be reached; 2 usage or configuration error.
    """
    from fiflow.starters.schedules_setup import ScheduleSetup

    schedules = ScheduleSetup.from_environment() if with_schedules else None

    async def run() -> SetupReport:
        client, chosen = await connect_for_setup(namespace, wait_seconds)
        report = await setup_namespace(
            client, chosen, retention=timedelta(days=retention_days), check_only=check
        )
        if schedules is not None and report.namespace_outcome != "missing":
            await schedules.run(chosen, report, check_only=check)
        return report

    try:
        report = asyncio.run(run())
    except SetupError as exc:
        fail(str(exc), 1)
    except RPCError as exc:
        hint = ""
        if exc.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
            hint = (
                " (on Temporal Cloud, create the namespace and search attributes with the "
                "Cloud UI or tcld, then verify with --check)"
            )
        fail(f"temporal setup failed: {exc.status.name}: {exc.message}{hint}", 1)
    except RuntimeError as exc:  # Temporal unreachable, bad TLS config...
        fail(f"temporal setup failed: {exc}", 1)
    for line in describe(report):
        typer.echo(line)
    exit_now(0 if report.ready else 1)
