"""One `fiflow up` stack shared by the end-to-end tests (each test uses its own customers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from temporalio.client import Client

from tests.e2e.stack import STOPPING, RunningStack, start_stack


@pytest.fixture(scope="session", autouse=True)
def stacks_stopped_in_background_exit_cleanly() -> Iterator[None]:
    """Every stack a module stopped without waiting (`stop_in_background`) exits 0."""
    yield
    codes = {running.log: running.stop() for running in STOPPING}
    unclean = [running for running in STOPPING if codes[running.log] != 0]
    assert not unclean, "\n\n".join(f"{r.log}: exit {codes[r.log]}\n{r.output()}" for r in unclean)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("stack") / "state")
    try:
        yield running
    finally:
        code = running.stop()
        assert code == 0, running.output()


# The side stack: one more stack, apart from the shared one, for the modules whose state
# must not show there (the four-eyes test's rule versions) or whose faults must not stall
# it (the inbox outage test freezes its Temporal server). Neither module looks at what the
# other does (rule versions vs. SMS inbox rows of its own customers), so they share it and
# the suite starts one stack fewer. It stops after the last test that uses it.
SIDE_STACK_ENV = {
    # The inbox relay backs off while Temporal is down; keep its longest wait short.
    "FIFLOW_INBOX_RELAY_MAX_BACKOFF_SECONDS": "3",
}
_side: list[RunningStack] = []


@pytest.fixture(scope="session")
def side_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("side") / "state", workers=1, extra_env=SIDE_STACK_ENV
    )
    _side.append(running)
    try:
        yield running
    finally:
        if _side:  # not stopped early
            _side.remove(running)
            running.stop_in_background()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the side stack once no later test needs it (rather than idling to the end)."""
    if not _side or nextitem is None:
        return
    later = item.session.items[item.session.items.index(item) + 1 :]
    if not any("side_stack" in getattr(i, "fixturenames", ()) for i in later):
        _side.pop().stop_in_background()


@pytest.fixture(scope="session")
async def temporal(stack: RunningStack) -> AsyncIterator[Client]:
    """A client on the stack's Temporal server, to check what did (or did not) start."""
    yield await Client.connect(stack.temporal, data_converter=stack.data_converter())


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def customers(stack: RunningStack) -> list[dict]:
    return httpx.get(f"{stack.sandbox}/__sandbox/customers", timeout=5).json()


# The sandbox's fixed credit profiles (780 clean, 640 borderline, 560 weak): kept for the
# credit tests, whose messages would otherwise land in an alert test's outbox.
CREDIT_CUSTOMERS = ("cust-0001", "cust-0003", "cust-0004")
# The one whose CRM record writes the phone "+1 202-555-0107": kept for the phone-number test,
# which opts it out.
FORMATTED_PHONE_CUSTOMER = "cust-0007"
# The canaries (unmistakable names, phones and card digits) belong to the PII canary test,
# which runs on its own stack and must find only what its own flows produced.
CANARY_CUSTOMERS = ("cust-canary-01", "cust-canary-02")


class CustomerPool:
    """Hands each test customers nobody else used (conversations are per phone number)."""

    def __init__(self, customers: list[dict]):
        reserved = (*CREDIT_CUSTOMERS, FORMATTED_PHONE_CUSTOMER)
        self._reserved = {c["customer_id"]: c for c in customers if c["customer_id"] in reserved}
        self._free = [
            c
            for c in customers
            if c["customer_id"] not in self._reserved and c["customer_id"] not in CANARY_CUSTOMERS
        ]

    def strong_applicant(self, profiles: list[dict]) -> dict:
        """A free SMS customer whose credit profile the shipped rules approve outright."""
        a_year_ago = (date.today() - timedelta(days=400)).isoformat()
        strong = {
            p["customer_id"]
            for p in profiles
            if p["score"] >= 760
            and p["returned_payments_12m"] == 0
            and p["overdraft_days_12m"] == 0
            and p["monthly_debt_payments"] <= 1000
            and p["customer_since"] <= a_year_ago
        }
        for c in self._free:
            if c["customer_id"] in strong and c.get("phone") and c["preferred_channel"] == "sms":
                self._free.remove(c)
                return c
        raise RuntimeError("the sandbox has no unused strong applicant left")

    def credit_customer(self, customer_id: str) -> dict:
        """One of the reserved credit customers (each handed out once)."""
        return self._reserved.pop(customer_id)

    def formatted_phone_customer(self) -> dict:
        """The customer whose CRM number is written with spaces and dashes (handed out once)."""
        return self._reserved.pop(FORMATTED_PHONE_CUSTOMER)

    def take_awake(self) -> dict:
        """A free SMS customer for whom it is daytime now (08:00-20:00 local), so a notice
        that may not arrive in quiet hours (21:00-08:00 by the shipped rules) goes out now."""
        for c in self._free:
            hour = datetime.now(ZoneInfo(c["timezone"])).hour
            sms = c["preferred_channel"] == "sms" and c.get("phone") and c.get("cards")
            if sms and 8 <= hour < 20:
                self._free.remove(c)
                return c
        raise RuntimeError("the sandbox has no unused customer in daytime left")

    def take(self, *, push: bool = False) -> dict:
        for c in self._free:
            prefers_push = c["preferred_channel"] == "push" and c.get("push_device_id")
            if c.get("cards") and c.get("phone") and bool(prefers_push) == push:
                self._free.remove(c)
                return c
        raise RuntimeError("the sandbox has no unused customer of that kind left")


@pytest.fixture(scope="session")
def profiles(stack: RunningStack) -> list[dict]:
    """The sandbox bureau's credit profile of every customer."""
    return httpx.get(f"{stack.sandbox}/__sandbox/credit-profiles", timeout=5).json()


@pytest.fixture(scope="session")
def pool(customers: list[dict]) -> CustomerPool:
    return CustomerPool(customers)
