"""The live API keeps its OpenAPI contract: schemathesis fuzzes every operation of a running
`fiflow up` with each role's valid credential and finds no 5xx, no undeclared status, no
response that breaks its schema and no wrong content type.

Every operation is fuzzed, none skipped. The Twilio-signed SMS webhook cannot be reached past
its signature check by generated requests (each unsigned one is a declared 403), so only that
answer of it is exercised here; tests/e2e/test_sms_replay_e2e.py signs real ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.pytest.lazy import get_all_tests
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.transport.requests import ManagedCookiesSession

from tests.e2e.stack import (
    ADMIN_PERSON_KEY,
    REVIEWER_PERSON_KEY,
    SYSTEM_KEY,
    RunningStack,
    channel_for,
    start_stack,
)

# Fuzzing sends hundreds of requests a second per key: far above the production limits.
GENEROUS_LIMITS = {
    f"FIFLOW_API_RATE_{role}_{what}": "100000"
    for role in ("SYSTEM", "CHANNEL", "REVIEWER", "ADMIN")
    for what in ("PER_SECOND", "BURST")
}
# A seeded sandbox customer: the channel reads with a valid session, so its requests get
# past the session check to the object lookups.
SESSION_CUSTOMER = "cust-0010"


# `POST /v1/feeds/transactions` takes NDJSON, which schemathesis has no serializer for: its
# body is a string in the spec, sent as it is.
@schemathesis.serializer("application/x-ndjson", "application/jsonl")
def _ndjson(_ctx: object, value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack of its own: fuzzed writes (alerts, applications, rule activations, follow-ups,
    events) must not show in the shared stack, whose tests assert exact state."""
    running = start_stack(
        tmp_path_factory.mktemp("contract") / "state", workers=1, extra_env=GENEROUS_LIMITS
    )
    try:
        yield running
    finally:
        running.stop_in_background()  # its exit code is checked at the session's end


@pytest.fixture(scope="module")
def api_schema(stack: RunningStack) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_url(f"{stack.api}/openapi.json", timeout=10)
    loaded.config.update(base_url=stack.api)
    return loaded


# Each role with a valid credential: the system key, a channel key with a seeded customer's
# session, and staff persons (a person passes every check a shared staff key passes).
ROLES = {
    "system": SYSTEM_KEY,
    "channel": channel_for(SESSION_CUSTOMER),
    "reviewer": REVIEWER_PERSON_KEY,
    "admin": ADMIN_PERSON_KEY,
}

# schemathesis's own pytest loader (`schemathesis.pytest.from_fixture`) does not run under
# pytest 9 (it sets `Function._nodeid`, gone there), so the test drives the same
# per-operation Hypothesis tests itself: explicit examples and the coverage phase's cases,
# then generated positive and negative ones.
SETTINGS = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


# Operations are fuzzed two at a time, as schemathesis's own runner does with `--workers`
# (each operation's Hypothesis test in a thread of its own): while one waits for the API,
# the other generates and validates. A case's roles still go one after another.
WORKERS = 2
_local = threading.local()


def _session() -> ManagedCookiesSession:
    """This thread's connection to the API, kept alive between requests (schemathesis opens
    a new one per request otherwise); it drops every response's cookies, as a new one would."""
    if not hasattr(_local, "session"):
        _local.session = ManagedCookiesSession()
    session: ManagedCookiesSession = _local.session
    return session


def _send_with_each_role(case: schemathesis.Case) -> None:
    # One request, sent with each role's credential: each role takes another path through
    # the endpoint (refused, scoped to its customer, or all the way through).
    for headers in ROLES.values():
        case.call_and_validate(session=_session(), headers=headers, checks=CHECKS, timeout=15)


def _fuzz(run: Callable[[], None]) -> str | None:
    """One operation's Hypothesis test; what it found, if anything."""
    try:
        run()
    # schemathesis reports a check's failures as a BaseExceptionGroup; collect every
    # operation's, then fail with all of them.
    except (Exception, BaseExceptionGroup) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def test_every_operation_keeps_its_contract(api_schema: schemathesis.BaseSchema) -> None:
    tested = []
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="fuzz") as pool:
        found = {}
        for result in get_all_tests(
            schema=api_schema, test_func=_send_with_each_role, settings=SETTINGS, given_kwargs=None
        ):
            operation, run = result.ok()  # an operation the spec cannot describe fails here
            tested.append(operation.label)
            found[operation.label] = pool.submit(_fuzz, run)
        failures = {label: f.result() for label, f in found.items() if f.result() is not None}
    assert len(tested) == len(
        [op for ops in api_schema.raw_schema["paths"].values() for op in ops]
    ), tested
    assert not failures, "\n\n".join(f"{label}\n{problem}" for label, problem in failures.items())
