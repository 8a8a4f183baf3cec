"""The alert load generator: post fraud alerts open-loop and follow each one like a customer.

Each alert is followed in its own task: find its SMS in the sandbox outbox (by a unique
merchant name), reply `YES <code>` or `NO <code>`, wait for the fraud system's call, then
for the workflow to close. Every step has a deadline (`Options.timeout`).

The sandbox is long-polled (`after` + `wait`): a "poll" figure is when the answer reached
the benchmark; the sandbox's own timestamps ("recorded") are exact. Waiting costs neither
side any polling, so an overloaded stack is not loaded further by the benchmark.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHistoryEventFilterType

from bench.alertbench.accounting import event_name
from bench.alertbench.measure import FlowResult, LoopTimes
from bench.alertbench.options import Options

ALERT_TYPE = "card_fraud_suspected"
# Below the rule file's pre-block threshold (5000), so no card is blocked up front.
AMOUNT = "912.00"
LONG_POLL_WAIT = 10.0  # seconds the sandbox holds one inspection request
POLL_MAX = 1.0  # pause after a failed request
# A reply code is four digits right after YES/NO in the alert text.
REPLY_CODE = re.compile(r"\b(?:YES|NO) ([0-9]{4})\b")
# The latencies one alert reports, in report order. The knee gates use the "recorded" ones.
LATENCIES = (
    "post_rtt",
    "post_to_sms_poll",
    "post_to_sms_recorded",
    "reply_to_fraud_poll",
    "reply_to_fraud_recorded",
    "end_to_end",
)
SMS_GATE = "post_to_sms_recorded"
FRAUD_GATE = "reply_to_fraud_recorded"


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


class StepFailed(Exception):
    """A flow's step did not succeed; `step` names it in the report."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


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
    """Seconds from a time.time() instant to a timestamp (same machine clock)."""
    return None if moment is None else moment.timestamp() - wall_start


def answer_for(reply: str, n: int) -> str:
    """What customer number n answers: fixed, or alternating for --reply mixed."""
    if reply == "mixed":
        return "yes" if n % 2 == 0 else "no"
    return reply


async def open_loop(
    rate: float,
    duration: float,
    max_in_flight: int,
    start_one: Callable[[int], Awaitable[FlowResult]],
) -> tuple[list[FlowResult], LoopTimes]:
    """Start flows on schedule regardless of how earlier ones fare; wait for all of them."""
    limit = asyncio.Semaphore(max_in_flight)
    tasks: list[asyncio.Task[FlowResult]] = []
    start = time.perf_counter()
    max_lag = 0.0
    n = 0
    while n / rate < duration:
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await limit.acquire()
        max_lag = max(max_lag, time.perf_counter() - due)
        task = asyncio.create_task(start_one(n))
        task.add_done_callback(lambda _: limit.release())
        tasks.append(task)
        n += 1
    window = max(time.perf_counter(), start + n / rate) - start
    results = list(await asyncio.gather(*tasks))
    wall = time.perf_counter() - start
    done = [r.completed_at - start for r in results if r.completed_at is not None]
    return results, LoopTimes(window, wall, max_lag, max(done, default=0.0))


async def wait_closed(client: Client, workflow_id: str) -> str:
    """Long-poll the workflow's close event and return its type (no payload decoding)."""
    handle = client.get_workflow_handle(workflow_id)
    events = handle.fetch_history_events(
        wait_new_event=True, event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT
    )
    async for event in events:
        return event_name(event)
    return "Unknown"


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
        # The sandbox holds each request until a message past the ones already seen is sent
        # (or LONG_POLL_WAIT passes).
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


class AlertLoad:
    """The alert flow driven through the API and the sandbox, like channel and customer."""

    flow = "alert"
    latencies = LATENCIES

    def __init__(
        self,
        opts: Options,
        http: httpx.AsyncClient,
        poll_http: httpx.AsyncClient,
        temporal: Client,
        targets: list[Target],
        run_id: str,
    ) -> None:
        self.opts = opts
        self.http = http  # requests on the measured path: alert posts, customer replies
        self.poll_http = poll_http  # sandbox long-polls, in their own pool
        self.temporal = temporal
        self.targets = targets
        self.run_id = run_id
        self.watchers = {t.phone: OutboxWatcher(poll_http, opts.sandbox, t.phone) for t in targets}
        self._next = 0  # alert numbers stay unique across steps

    async def run(self, rate: float, duration: float) -> tuple[list[FlowResult], LoopTimes]:
        """One open-loop run at `rate` alerts/s for `duration` seconds."""
        first = self._next
        self._next += int(rate * duration) + 1

        async def one(i: int) -> FlowResult:
            n = first + i
            target = self.targets[n % len(self.targets)]
            return await self.run_alert(n, target, answer_for(self.opts.reply, n))

        return await open_loop(rate, duration, self.opts.max_in_flight, one)

    async def close(self) -> None:
        """Stop the outbox pollers."""
        await asyncio.gather(*(w.close() for w in self.watchers.values()))

    def poll_counts(self) -> dict[str, int]:
        """Outbox long-polls made and failed, over the whole run."""
        return {
            "outbox_polls": sum(w.polls for w in self.watchers.values()),
            "outbox_poll_errors": sum(w.errors for w in self.watchers.values()),
        }

    async def post_alert(self, n: int, target: Target, merchant: str) -> str:
        """POST /v1/alerts and return the alert ID."""
        occurred = datetime.now(UTC) - timedelta(minutes=2)
        payload = {
            "source_event_id": f"bench-{self.run_id}-{n:06d}",
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
        response = await self.http.post(
            f"{self.opts.api}/v1/alerts", json=payload, headers={"X-API-Key": self.opts.api_key}
        )
        if response.status_code not in (200, 201, 202):
            raise StepFailed("post", f"HTTP {response.status_code}: {response.text[:200]}")
        return str(response.json()["alert_id"])

    async def send_reply(self, phone: str, text: str) -> None:
        """Have the sandbox deliver the customer's SMS reply to the webhook."""
        response = await self.http.post(
            f"{self.opts.sandbox}/__sandbox/sms/inbound", json={"from": phone, "body": text}
        )
        if response.status_code != 200:
            raise StepFailed("reply", f"HTTP {response.status_code}: {response.text[:200]}")
        webhook_status = int(response.json().get("webhook_status", 0))
        if not 200 <= webhook_status < 300:
            raise StepFailed("reply", f"webhook answered {webhook_status}")

    async def wait_fraud_call(self, key: str) -> tuple[float, dict[str, Any]]:
        """Long-poll the fraud system's recorded calls until one with that key succeeded."""
        url = f"{self.opts.sandbox}/__sandbox/calls"
        seen = 0
        while True:
            params = {
                "system": "fraud",
                "idempotency_key": key,
                "after": seen,
                "wait": LONG_POLL_WAIT,
            }
            try:
                response = await self.poll_http.get(url, params=params, timeout=LONG_POLL_WAIT + 10)
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

    async def run_alert(self, n: int, target: Target, answer: str) -> FlowResult:
        """One alert's whole life: post, find its SMS, reply, see the fraud call, see it close."""
        result = FlowResult(n=n, answer=answer)
        lat = result.latency
        timeout = self.opts.timeout
        # Zero-padded so no merchant is a prefix of another one in the same run.
        merchant = f"BENCH-{self.run_id}-{n:06d}"
        watcher = self.watchers[target.phone]
        step = "post"
        try:
            sms_future = watcher.expect(merchant)
            wall_post, t_post = time.time(), time.perf_counter()
            async with asyncio.timeout(timeout):
                result.flow_id = alert_id = await self.post_alert(n, target, merchant)
            lat["post_rtt"] = time.perf_counter() - t_post

            step = "sms"
            async with asyncio.timeout(timeout):
                sms = await sms_future
            lat["post_to_sms_poll"] = sms.seen_at - t_post
            lat["post_to_sms_recorded"] = since(wall_post, sms.sent_at)

            step = "reply"
            outcome = "confirm" if answer == "yes" else "contest"
            wall_reply, t_reply = time.time(), time.perf_counter()
            async with asyncio.timeout(timeout):
                await self.send_reply(target.phone, f"{answer.upper()} {sms.code}")

            step = "fraud"
            key = f"alert-{alert_id}:record_fraud_outcome:{outcome}"
            async with asyncio.timeout(timeout):
                seen_at, call = await self.wait_fraud_call(key)
            lat["reply_to_fraud_poll"] = seen_at - t_reply
            lat["reply_to_fraud_recorded"] = since(wall_reply, parse_time(call.get("at")))
            expected = "genuine" if answer == "yes" else "fraud"
            body = call.get("body") or {}
            if body.get("case_ref") != alert_id or body.get("outcome") != expected:
                raise StepFailed("fraud", f"unexpected fraud case {body!r}")

            step = "complete"
            async with asyncio.timeout(timeout):
                closed = await wait_closed(self.temporal, f"alert-{alert_id}")
            if closed != "WorkflowExecutionCompleted":
                raise StepFailed("complete", f"workflow closed with {closed}")
            result.completed_at = time.perf_counter()
            lat["end_to_end"] = result.completed_at - t_post
        except StepFailed as exc:
            result.failed_step, result.error = exc.step, str(exc)
        except TimeoutError:
            result.failed_step, result.error = step, f"no result within {timeout:g}s"
        except Exception as exc:  # a benchmark reports every failure instead of stopping
            result.failed_step, result.error = step, f"{type(exc).__name__}: {exc}"
        finally:
            watcher.forget(merchant)
        return result
