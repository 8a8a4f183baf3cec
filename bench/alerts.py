"""Fraud-alert benchmark against a running local stack (`fiflow up`).

Posts `card_fraud_suspected` alerts open-loop at a fixed rate, answers each alert's SMS
through the sandbox like a customer would, and measures how long each step takes, how
many flows complete, and how many Temporal actions one flow costs.

    .venv/bin/python bench/alerts.py --rate 10 --duration 60

It prints figures (one per line, then one JSON line); it never asserts on timings. Exit
code 0 when every alert completed, 1 when any failed or timed out, 2 when the stack is
not reachable.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import os
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistoryEventFilterType
from temporalio.contrib.pydantic import pydantic_data_converter

ALERT_TYPE = "card_fraud_suspected"
# Below the rule file's pre-block threshold (5000), so no card is blocked up front.
AMOUNT = "912.00"
# The sandbox is long-polled (`after` + `wait`): a "polled" figure is when the answer
# reached the benchmark, and waiting costs neither side any polling, so an overloaded stack
# is not loaded further by the benchmark. The sandbox's own timestamps give exact figures.
LONG_POLL_WAIT = 10.0  # seconds the sandbox holds one inspection request
POLL_MAX = 1.0  # pause after a failed request
HISTORY_SAMPLE = 50
CONVERSATION_RUNS_MAX = 2000
# A reply code is four digits right after YES/NO in the alert text.
REPLY_CODE = re.compile(r"\b(?:YES|NO) ([0-9]{4})\b")
# The events the report counts as actions, one per occurrence. A workflow-to-workflow
# signal shows up twice (sent by one, received by the other).
ACTION_EVENTS = (
    "WorkflowExecutionStarted",
    "ActivityTaskScheduled",
    "TimerStarted",
    "WorkflowExecutionSignaled",
    "SignalExternalWorkflowExecutionInitiated",
    "StartChildWorkflowExecutionInitiated",
)
# Temporal Cloud's billable actions as far as a history shows them: signals are counted
# where they are received only, a child start costs two, activity retries come on top.
# Signal-with-start bills one action but shows a start and a signal, so this slightly
# overestimates conversations started that way.
BILLABLE_WEIGHTS = {
    "WorkflowExecutionStarted": 1,
    "ActivityTaskScheduled": 1,
    "TimerStarted": 1,
    "WorkflowExecutionSignaled": 1,
    "StartChildWorkflowExecutionInitiated": 2,
    "UpsertWorkflowSearchAttributes": 1,
    "WorkflowExecutionUpdateAccepted": 1,
    "WorkflowExecutionUpdateRejected": 1,
    "MarkerRecorded": 1,
}


@dataclass(frozen=True)
class Options:
    """Command-line options."""

    api: str
    sandbox: str
    temporal: str
    namespace: str
    rate: float
    duration: float
    api_key: str
    reply: str
    timeout: float
    max_in_flight: int
    connections: int
    history_sample: int


@dataclass(frozen=True)
class Target:
    """A seeded customer the alert texts go to by SMS."""

    customer_id: str
    phone: str
    card_last4: str


@dataclass(frozen=True)
class SmsSeen:
    """An alert SMS found in the outbox."""

    code: str
    seen_at: float  # perf_counter when the poll that found it returned
    sent_at: datetime | None  # the sandbox's own timestamp


@dataclass
class AlertResult:
    """What happened to one alert; latencies in seconds, None when not reached."""

    n: int
    answer: str  # yes | no
    alert_id: str | None = None
    failed_step: str | None = None
    error: str = ""
    post_rtt: float | None = None
    sms_poll: float | None = None
    sms_recorded: float | None = None
    fraud_poll: float | None = None
    fraud_recorded: float | None = None
    end_to_end: float | None = None
    completed_at: float | None = None  # perf_counter when the close event was seen


@dataclass(frozen=True)
class LoopTimes:
    """Timings of the whole run, in seconds."""

    window: float  # posting window: first scheduled start to the last one
    wall: float  # first start to the last alert settled
    max_lag: float  # worst start behind schedule: cap reached, or this process starved of CPU
    last_completion: float  # first start to the last workflow completion seen


@dataclass
class Run:
    """Shared state of one benchmark run."""

    opts: Options
    http: httpx.AsyncClient  # requests on the measured path: alert posts, customer replies
    poll_http: httpx.AsyncClient  # sandbox polls, in their own pool so they queue apart
    temporal: Client
    run_id: str
    watchers: dict[str, OutboxWatcher] = field(default_factory=dict)


class StepFailed(Exception):
    """An alert's step did not succeed; `step` names it in the report."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        description="Benchmark fraud alerts end to end against a running `fiflow up` stack."
    )
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="fiflow API base URL")
    parser.add_argument("--sandbox", default="http://127.0.0.1:8100", help="sandbox base URL")
    parser.add_argument("--temporal", default="127.0.0.1:7233", help="Temporal frontend")
    parser.add_argument("--namespace", default="default", help="Temporal namespace")
    parser.add_argument("--rate", type=float, default=10.0, help="alerts per second")
    parser.add_argument("--duration", type=float, default=60.0, help="posting window, seconds")
    parser.add_argument("--api-key", default="local-system-key", help="X-API-Key header")
    parser.add_argument(
        "--reply", choices=("yes", "no", "mixed"), default="mixed", help="what customers answer"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline of each step, s")
    parser.add_argument(
        "--max-in-flight", type=int, default=2000, help="cap on alerts in flight at once"
    )
    parser.add_argument(
        "--connections", type=int, default=100, help="HTTP connections per pool (posts, polls)"
    )
    parser.add_argument(
        "--history-sample",
        type=int,
        default=HISTORY_SAMPLE,
        help="completed alert workflows whose history is counted",
    )
    ns = parser.parse_args(argv)
    if ns.rate <= 0 or ns.duration <= 0 or ns.timeout <= 0 or ns.max_in_flight < 1:
        parser.error("--rate, --duration, --timeout and --max-in-flight must be positive")
    return Options(
        api=ns.api.rstrip("/"),
        sandbox=ns.sandbox.rstrip("/"),
        temporal=ns.temporal,
        namespace=ns.namespace,
        rate=ns.rate,
        duration=ns.duration,
        api_key=ns.api_key,
        reply=ns.reply,
        timeout=ns.timeout,
        max_in_flight=ns.max_in_flight,
        connections=ns.connections,
        history_sample=ns.history_sample,
    )


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp from the sandbox, or None when absent or malformed."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def since(wall_start: float, moment: datetime | None) -> float | None:
    """Seconds from a time.time() instant to a sandbox timestamp (same machine clock)."""
    return None if moment is None else moment.timestamp() - wall_start


# --- sandbox ------------------------------------------------------------------------------


async def load_targets(http: httpx.AsyncClient, sandbox: str) -> list[Target]:
    """Seeded customers reached by SMS first, each with the first of their cards."""
    response = await http.get(f"{sandbox}/__sandbox/customers")
    response.raise_for_status()
    targets = []
    for customer in response.json():
        push_first = customer.get("preferred_channel") == "push" and customer.get("push_device_id")
        cards = customer.get("cards") or []
        if push_first or not cards or not customer.get("phone"):
            continue
        targets.append(Target(customer["customer_id"], customer["phone"], cards[0]["last4"]))
    return targets


class OutboxWatcher:
    """Polls one phone's SMS outbox while alerts wait for their text, keyed by merchant.

    One poller per phone instead of one per alert keeps the sandbox's load flat however
    many alerts are in flight for that customer.
    """

    def __init__(self, http: httpx.AsyncClient, sandbox: str, phone: str) -> None:
        self._http = http
        self._url = f"{sandbox}/__sandbox/sms/outbox"
        self._phone = phone
        self._waiters: dict[str, asyncio.Future[SmsSeen]] = {}
        self._offset = 0
        self._task: asyncio.Task[None] | None = None
        self.polls = 0
        self.errors = 0

    def expect(self, merchant: str) -> asyncio.Future[SmsSeen]:
        """A future resolved when an alert SMS naming that merchant is sent."""
        future: asyncio.Future[SmsSeen] = asyncio.get_running_loop().create_future()
        self._waiters[merchant] = future
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll())
        return future

    def forget(self, merchant: str) -> None:
        """Stop waiting for that merchant's SMS (found, failed or timed out)."""
        self._waiters.pop(merchant, None)

    async def close(self) -> None:
        """Cancel the poller."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _poll(self) -> None:
        # Long-polls: the sandbox holds each request until a message past the ones already
        # seen is sent (or LONG_POLL_WAIT passes), so waiting costs no polling.
        while self._waiters:
            try:
                response = await self._http.get(
                    self._url,
                    params={"to": self._phone, "after": self._offset, "wait": LONG_POLL_WAIT},
                    timeout=LONG_POLL_WAIT + 10,
                )
                response.raise_for_status()
                messages = response.json()
            except (httpx.HTTPError, ValueError):
                self.errors += 1
                await asyncio.sleep(POLL_MAX)
                continue
            seen_at = time.perf_counter()
            self.polls += 1
            for message in messages:
                self._match(message, seen_at)
            self._offset += len(messages)

    def _match(self, message: dict[str, Any], seen_at: float) -> None:
        body = str(message.get("body", ""))
        code = REPLY_CODE.search(body)
        if code is None:  # confirmations and clarifications carry no fresh code
            return
        for merchant, future in list(self._waiters.items()):
            if f"{merchant} " in body and not future.done():
                future.set_result(SmsSeen(code[1], seen_at, parse_time(message.get("sent_at"))))
                self.forget(merchant)
                return


async def wait_fraud_call(run: Run, key: str) -> tuple[float, dict[str, Any]]:
    """Long-poll the fraud system's recorded calls until one with that key succeeded."""
    url = f"{run.opts.sandbox}/__sandbox/calls"
    seen = 0
    while True:
        params = {"system": "fraud", "idempotency_key": key, "after": seen, "wait": LONG_POLL_WAIT}
        try:
            response = await run.poll_http.get(url, params=params, timeout=LONG_POLL_WAIT + 10)
            response.raise_for_status()
            calls = response.json()
        except (httpx.HTTPError, ValueError):
            # A failed poll is retried; the step's deadline bounds the wait.
            await asyncio.sleep(POLL_MAX)
            continue
        for call in calls:
            if 200 <= int(call.get("status_code", 0)) < 300:
                return time.perf_counter(), call
        seen += len(calls)


# --- one alert ----------------------------------------------------------------------------


async def wait_closed(client: Client, workflow_id: str) -> str:
    """Long-poll the workflow's close event and return its type (no payload decoding)."""
    handle = client.get_workflow_handle(workflow_id)
    events = handle.fetch_history_events(
        wait_new_event=True, event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT
    )
    async for event in events:
        return event_name(event)
    return "Unknown"


async def post_alert(run: Run, n: int, target: Target, merchant: str) -> str:
    """POST /v1/alerts and return the alert ID."""
    occurred = datetime.now(UTC) - timedelta(minutes=2)
    payload = {
        "source_event_id": f"bench-{run.run_id}-{n:06d}",
        "customer_id": target.customer_id,
        "alert_type": ALERT_TYPE,
        "transaction": {
            "amount": AMOUNT,
            "currency": "USD",
            "merchant": merchant,
            "occurred_at": occurred.isoformat(),
            "card_last4": target.card_last4,
        },
    }
    response = await run.http.post(
        f"{run.opts.api}/v1/alerts", json=payload, headers={"X-API-Key": run.opts.api_key}
    )
    if response.status_code not in (200, 201, 202):
        raise StepFailed("post", f"HTTP {response.status_code}: {response.text[:200]}")
    return str(response.json()["alert_id"])


async def send_reply(run: Run, phone: str, text: str) -> None:
    """Have the sandbox deliver the customer's SMS reply to the webhook."""
    response = await run.http.post(
        f"{run.opts.sandbox}/__sandbox/sms/inbound", json={"from": phone, "body": text}
    )
    if response.status_code != 200:
        raise StepFailed("reply", f"HTTP {response.status_code}: {response.text[:200]}")
    webhook_status = int(response.json().get("webhook_status", 0))
    if not 200 <= webhook_status < 300:
        raise StepFailed("reply", f"webhook answered {webhook_status}")


async def run_alert(run: Run, n: int, target: Target, answer: str) -> AlertResult:
    """One alert's whole life: post, find its SMS, reply, see the fraud call, see it close."""
    result = AlertResult(n=n, answer=answer)
    timeout = run.opts.timeout
    # Zero-padded so no merchant is a prefix of another one in the same run.
    merchant = f"BENCH-{run.run_id}-{n:06d}"
    watcher = run.watchers[target.phone]
    step = "post"
    try:
        sms_future = watcher.expect(merchant)
        wall_post, t_post = time.time(), time.perf_counter()
        async with asyncio.timeout(timeout):
            result.alert_id = alert_id = await post_alert(run, n, target, merchant)
        result.post_rtt = time.perf_counter() - t_post

        step = "sms"
        async with asyncio.timeout(timeout):
            sms = await sms_future
        result.sms_poll = sms.seen_at - t_post
        result.sms_recorded = since(wall_post, sms.sent_at)

        step = "reply"
        outcome = "confirm" if answer == "yes" else "contest"
        wall_reply, t_reply = time.time(), time.perf_counter()
        async with asyncio.timeout(timeout):
            await send_reply(run, target.phone, f"{answer.upper()} {sms.code}")

        step = "fraud"
        key = f"alert-{alert_id}:record_fraud_outcome:{outcome}"
        async with asyncio.timeout(timeout):
            seen_at, call = await wait_fraud_call(run, key)
        result.fraud_poll = seen_at - t_reply
        result.fraud_recorded = since(wall_reply, parse_time(call.get("at")))
        expected = "genuine" if answer == "yes" else "fraud"
        body = call.get("body") or {}
        if body.get("case_ref") != alert_id or body.get("outcome") != expected:
            raise StepFailed("fraud", f"unexpected fraud case {body!r}")

        step = "complete"
        async with asyncio.timeout(timeout):
            closed = await wait_closed(run.temporal, f"alert-{alert_id}")
        if closed != "WorkflowExecutionCompleted":
            raise StepFailed("complete", f"workflow closed with {closed}")
        result.completed_at = time.perf_counter()
        result.end_to_end = result.completed_at - t_post
    except StepFailed as exc:
        result.failed_step, result.error = exc.step, str(exc)
    except TimeoutError:
        result.failed_step, result.error = step, f"no result within {timeout:g}s"
    except Exception as exc:  # a benchmark reports every failure instead of stopping
        result.failed_step, result.error = step, f"{type(exc).__name__}: {exc}"
    finally:
        watcher.forget(merchant)
    return result


def answer_for(reply: str, n: int) -> str:
    """What customer number n answers: fixed, or alternating for --reply mixed."""
    if reply == "mixed":
        return "yes" if n % 2 == 0 else "no"
    return reply


async def send_open_loop(run: Run, targets: list[Target]) -> tuple[list[AlertResult], LoopTimes]:
    """Start alerts on schedule regardless of how earlier ones fare; wait for all of them."""
    opts = run.opts
    limit = asyncio.Semaphore(opts.max_in_flight)
    tasks: list[asyncio.Task[AlertResult]] = []
    start = time.perf_counter()
    max_lag = 0.0
    n = 0
    while n / opts.rate < opts.duration:
        due = start + n / opts.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await limit.acquire()
        max_lag = max(max_lag, time.perf_counter() - due)
        target = targets[n % len(targets)]
        task = asyncio.create_task(run_alert(run, n, target, answer_for(opts.reply, n)))
        task.add_done_callback(lambda _: limit.release())
        tasks.append(task)
        n += 1
    window = max(time.perf_counter(), start + n / opts.rate) - start
    results = list(await asyncio.gather(*tasks))
    wall = time.perf_counter() - start
    done = [r.completed_at - start for r in results if r.completed_at is not None]
    return results, LoopTimes(window, wall, max_lag, max(done, default=0.0))


# --- Temporal histories -------------------------------------------------------------------


def event_name(event: HistoryEvent) -> str:
    """The event type in the Web UI's spelling ("ActivityTaskScheduled")."""
    name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    return "".join(part.capitalize() for part in name.split("_"))


def count_events(
    events: Iterable[HistoryEvent], window: tuple[datetime, datetime] | None = None
) -> tuple[Counter[str], int]:
    """Events per type and activity retries (attempts past the first), optionally in a window."""
    counts: Counter[str] = Counter()
    retries = 0
    for event in events:
        if window is not None:
            moment = event.event_time.ToDatetime(tzinfo=UTC)
            if not window[0] <= moment <= window[1]:
                continue
        name = event_name(event)
        counts[name] += 1
        if name == "ActivityTaskStarted":
            retries += max(0, event.activity_task_started_event_attributes.attempt - 1)
    return counts, retries


async def alert_history_counts(
    client: Client, alert_ids: Sequence[str]
) -> tuple[Counter[str], int]:
    """Summed event counts and activity retries over the given alert workflows."""
    limit = asyncio.Semaphore(10)

    async def one(alert_id: str) -> tuple[Counter[str], int]:
        async with limit:
            history = await client.get_workflow_handle(f"alert-{alert_id}").fetch_history()
        return count_events(history.events)

    total: Counter[str] = Counter()
    retries = 0
    for counts, extra in await asyncio.gather(*(one(a) for a in alert_ids)):
        total.update(counts)
        retries += extra
    return total, retries


async def conversation_history_counts(
    client: Client, window: tuple[datetime, datetime]
) -> tuple[Counter[str], int, int]:
    """Events of every ConversationWorkflow run that happened inside the window.

    Conversation IDs are keyed hashes of phone numbers, so the runs are found by type;
    other traffic in the same window is counted too. Returns the counts, the activity
    retries and how many runs were read (at most CONVERSATION_RUNS_MAX, newest first).
    """
    runs = []
    async for execution in client.list_workflows("WorkflowType='ConversationWorkflow'"):
        if execution.close_time is None or execution.close_time >= window[0]:
            runs.append((execution.id, execution.run_id))
        if len(runs) >= CONVERSATION_RUNS_MAX:
            break
    limit = asyncio.Semaphore(10)

    async def one(workflow_id: str, run_id: str) -> tuple[Counter[str], int]:
        async with limit:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            history = await handle.fetch_history()
        return count_events(history.events, window)

    total: Counter[str] = Counter()
    retries = 0
    for counts, extra in await asyncio.gather(*(one(w, r) for w, r in runs)):
        total.update(counts)
        retries += extra
    return total, retries, len(runs)


def per_flow(counts: Counter[str], retries: int, flows: int) -> dict[str, Any]:
    """Means per flow: counted actions by type, the billable estimate, every event type."""
    if flows == 0:
        return {"flows": 0}
    actions = sum(counts[name] for name in ACTION_EVENTS)
    billable = sum(counts[name] * weight for name, weight in BILLABLE_WEIGHTS.items()) + retries
    return {
        "flows": flows,
        "actions": round(actions / flows, 2),
        "by_action": {name: round(counts[name] / flows, 2) for name in ACTION_EVENTS},
        "billable_estimate": round(billable / flows, 2),
        "activity_retries": round(retries / flows, 2),
        "events": round(sum(counts.values()) / flows, 2),
        "by_event": {name: round(c / flows, 2) for name, c in sorted(counts.items())},
    }


# --- report -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (nearest rank), or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """p50/p95/p99/max in milliseconds over the values that were measured."""
    present = [v for v in values if v is not None]

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        "n": len(present),
        "p50_ms": ms(percentile(present, 50)),
        "p95_ms": ms(percentile(present, 95)),
        "p99_ms": ms(percentile(present, 99)),
        "max_ms": ms(max(present) if present else None),
    }


def temporal_lines(temporal: dict[str, Any]) -> list[str]:
    """The Temporal part of the report: actions per flow, then events per flow."""
    lines: list[str] = []
    scopes = (
        ("alert_workflow", "alert workflow", "per flow, sampled"),
        ("conversations", "conversations", "per accepted alert"),
    )
    for key, label, unit in scopes:
        figures = temporal.get(key, {})
        if not figures.get("flows"):
            lines.append(f"temporal actions, {label}: n/a")
            continue
        lines.append(
            f"temporal actions, {label} ({unit}, n={figures['flows']}): {figures['actions']:.2f}"
        )
        lines += [f"  {name}: {value:.2f}" for name, value in figures["by_action"].items()]
        lines.append(f"  activity retries: {figures['activity_retries']:.2f}")
        lines.append(
            f"temporal billable actions (estimate), {label}: {figures['billable_estimate']:.2f}"
        )
        lines.append(f"temporal history events, {label}: {figures['events']:.2f}")
        lines += [f"  {name}: {value:.2f}" for name, value in figures["by_event"].items()]
    if "billable_per_alert" in temporal:
        lines.append(
            "temporal billable actions per alert (estimate), alert + conversations: "
            f"{temporal['billable_per_alert']:.2f}"
        )
    return lines


def print_report(summary: dict[str, Any]) -> None:
    """Figures one per line, then the whole summary as one JSON line."""
    lines = [
        f"alerts posted: {summary['posted']}",
        f"alerts accepted (2xx): {summary['accepted']}",
        f"alerts completed: {summary['completed']}",
        f"alerts failed or timed out: {summary['failed']}",
    ]
    lines += [f"  failed at {step}: {count}" for step, count in summary["failed_by_step"].items()]
    lines += [f"  example error: {error}" for error in summary["example_errors"]]
    lines += [
        f"posting window: {summary['posting_window_s']:.2f} s",
        f"total wall time: {summary['wall_time_s']:.2f} s",
        f"drain time (last completion after the posting window): {summary['drain_s']:.2f} s",
        f"worst start lag behind schedule: {summary['max_start_lag_ms']:.1f} ms",
        f"POST acceptance rate: {summary['accepted_per_s']:.2f} alerts/s",
        f"sustained rate (completed / posting window): {summary['completed_per_s']:.2f} alerts/s",
        "completion throughput (completed / first post to last completion): "
        f"{summary['completion_throughput_per_s']:.2f} alerts/s",
    ]
    labels = {
        "post_rtt": "POST /v1/alerts round trip",
        "post_to_sms_poll": "POST -> SMS in outbox (polled)",
        "post_to_sms_recorded": "POST -> SMS in outbox (sandbox sent_at)",
        "reply_to_fraud_poll": "reply -> fraud call (polled)",
        "reply_to_fraud_recorded": "reply -> fraud call (sandbox timestamp)",
        "end_to_end": "POST -> workflow completed",
    }
    for key, label in labels.items():
        figures = summary["latency"][key]
        for name in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
            value = figures[name]
            shown = "n/a" if value is None else f"{value:.1f} ms"
            lines.append(f"{label} {name.removesuffix('_ms')}: {shown}")
    lines += temporal_lines(summary["temporal"])
    if "conversation_runs" in summary["temporal"]:
        runs = summary["temporal"]["conversation_runs"]
        capped = " (capped: conversation figures are low)" if runs >= CONVERSATION_RUNS_MAX else ""
        lines.append(f"conversation runs counted: {runs}{capped}")
    if "error" in summary["temporal"]:
        lines.append(f"temporal history counting failed: {summary['temporal']['error']}")
    print("\n".join(lines))
    print(json.dumps(summary, sort_keys=True), flush=True)


def summarize(
    opts: Options,
    results: list[AlertResult],
    times: LoopTimes,
    temporal: dict[str, Any],
) -> dict[str, Any]:
    """Everything the report shows, JSON-serialisable."""
    completed = [r for r in results if r.failed_step is None]
    failed = [r for r in results if r.failed_step is not None]
    accepted = sum(1 for r in results if r.alert_id is not None)
    window = times.window
    return {
        "options": {k: v for k, v in vars(opts).items() if k != "api_key"},
        "posted": len(results),
        "accepted": accepted,
        "completed": len(completed),
        "failed": len(failed),
        "failed_by_step": dict(Counter(r.failed_step for r in failed if r.failed_step)),
        "example_errors": sorted({f"{r.failed_step}: {r.error}" for r in failed})[:5],
        "posting_window_s": round(window, 3),
        "wall_time_s": round(times.wall, 3),
        "drain_s": round(max(0.0, times.last_completion - times.window), 3),
        "max_start_lag_ms": round(times.max_lag * 1000, 1),
        "accepted_per_s": round(accepted / window, 3),
        "completed_per_s": round(len(completed) / window, 3),
        "completion_throughput_per_s": (
            round(len(completed) / times.last_completion, 3) if times.last_completion else 0.0
        ),
        "latency": {
            "post_rtt": latency_summary([r.post_rtt for r in results]),
            "post_to_sms_poll": latency_summary([r.sms_poll for r in results]),
            "post_to_sms_recorded": latency_summary([r.sms_recorded for r in results]),
            "reply_to_fraud_poll": latency_summary([r.fraud_poll for r in results]),
            "reply_to_fraud_recorded": latency_summary([r.fraud_recorded for r in results]),
            "end_to_end": latency_summary([r.end_to_end for r in results]),
        },
        "temporal": temporal,
    }


async def temporal_figures(
    opts: Options, client: Client, results: list[AlertResult], window: tuple[datetime, datetime]
) -> dict[str, Any]:
    """Actions per flow from a sample of alert histories and from the conversations."""
    completed = [r.alert_id for r in results if r.failed_step is None and r.alert_id]
    sample = completed[: opts.history_sample]
    figures: dict[str, Any] = {}
    try:
        counts, retries = await alert_history_counts(client, sample)
        figures["alert_workflow"] = per_flow(counts, retries, len(sample))
        accepted = sum(1 for r in results if r.alert_id is not None)
        conv, conv_retries, runs = await conversation_history_counts(client, window)
        figures["conversations"] = per_flow(conv, conv_retries, accepted)
        figures["conversation_runs"] = runs
        if sample and accepted:
            figures["billable_per_alert"] = round(
                figures["alert_workflow"]["billable_estimate"]
                + figures["conversations"]["billable_estimate"],
                2,
            )
    except Exception as exc:  # the latency figures are still worth printing
        figures["error"] = f"{type(exc).__name__}: {exc}"
    return figures


async def main_async(opts: Options) -> int:
    """Run the benchmark and print the report; the process exit code."""
    # httpcore scans every pooled connection on each request: keep few idle ones.
    limits = httpx.Limits(
        max_connections=opts.connections, max_keepalive_connections=min(opts.connections, 20)
    )
    # Long-polls each hold a connection (one per phone, one per awaited fraud call): no cap,
    # or they would queue behind each other and the figures would measure the queue.
    poll_limits = httpx.Limits(max_connections=None, max_keepalive_connections=opts.connections)
    async with (
        httpx.AsyncClient(timeout=opts.timeout, limits=limits) as http,
        httpx.AsyncClient(timeout=opts.timeout, limits=poll_limits) as poll_http,
    ):
        part = f"API {opts.api}"
        try:
            health = await http.get(f"{opts.api}/healthz")
            health.raise_for_status()
            part = f"sandbox {opts.sandbox}"
            targets = await load_targets(http, opts.sandbox)
            part = f"Temporal {opts.temporal} namespace {opts.namespace}"
            temporal = await Client.connect(
                opts.temporal, namespace=opts.namespace, data_converter=pydantic_data_converter
            )
        except Exception as exc:  # unreachable stack: say which part and stop
            print(f"{part} not reachable: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        if not targets:
            print("the sandbox has no SMS customer with a card", file=sys.stderr)
            return 2
        run = Run(opts, http, poll_http, temporal, run_id=uuid.uuid4().hex[:8])
        run.watchers = {t.phone: OutboxWatcher(poll_http, opts.sandbox, t.phone) for t in targets}
        print(
            f"run {run.run_id}: {opts.rate:g} alerts/s for {opts.duration:g} s "
            f"over {len(targets)} SMS customers, reply={opts.reply}",
            file=sys.stderr,
            flush=True,
        )
        started = datetime.now(UTC)
        try:
            results, times = await send_open_loop(run, targets)
        finally:
            await asyncio.gather(*(w.close() for w in run.watchers.values()))
        finished = datetime.now(UTC) + timedelta(seconds=1)
        temporal_summary = await temporal_figures(opts, temporal, results, (started, finished))
    summary = summarize(opts, results, times, temporal_summary)
    summary["run_id"] = run.run_id
    summary["outbox_polls"] = sum(w.polls for w in run.watchers.values())
    summary["outbox_poll_errors"] = sum(w.errors for w in run.watchers.values())
    print_report(summary)
    return 1 if summary["failed"] else 0


def skip_missing_sniffio() -> None:
    """Make httpcore's per-request `import sniffio` fail fast when sniffio is not installed.

    httpcore retries that import on every request, and a failed import searches the whole
    path each time: about 0.4 ms per request, enough to skew a load generator.
    """
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]  # cached "not installed"


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run, flush, and exit without interpreter teardown (sdk-python #300)."""
    skip_missing_sniffio()
    code = asyncio.run(main_async(parse_args(argv)))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
