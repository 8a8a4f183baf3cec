"""Real-time feed benchmark: transactions through the JetStream stream to the alert SMS.

    SANDBOX_CUSTOMER_COUNT=9999 .venv/bin/fiflow up --feed-consumers 2   # another terminal
    .venv/bin/python bench/feeds_stream.py --rate 2000 --seconds 60

Against a running `fiflow up` (issue 9 section 7: 2,000 transactions/s for 60 s with 1 %
matching; targets: no growing consumer lag, p99 publish -> alert SMS <= 1 s), it:

1. picks the sandbox's customers whose preferred channel is SMS (`--customers` of them, all
   by default) so every alert is texted, and starts a sandbox stream run
   (`POST /__sandbox/feeds/stream`: rate, seconds, alert_share, those customers);
2. samples the durable consumers every `--sample-every` seconds with nats-py
   (`js.consumers_info(stream)`: the legacy subject's and each partition's): the lag is
   num_pending + num_ack_pending summed (messages not yet acknowledged). p50/p99/max over
   the publishing window, and whether it grows: the least-squares slope of the lag over
   the second half of that window, in messages/s, counts as growing above 1 % of the rate.
   After publishing it keeps sampling until the lag is 0 (the drain time) or
   `--drain-seconds` pass;
3. finds each alerting transaction's alert SMS in the sandbox outbox (long-polling
   `/__sandbox/sms/outbox?to=<phone>&after=&wait=`, one request per customer at a time) and
   computes publish-ack -> SMS sent p50/p95/p99/max from the sandbox's own clock (the run's
   `published_at`, the outbox message's `sent_at`: the same process). A customer's alert
   SMS (the ones naming the generator's alerting merchant) are paired with their alerting
   transactions in publish order.

Progress goes to stderr; stdout holds one figure per line, then one JSON line. It never
asserts on timings. Exit code 0 when the run finished and every alert SMS was found, 1 when
the stream run failed or alert SMS are missing, 2 when the stack is unreachable.

Mind the per-number alert cap (alerts.yaml `sms_alert_cap`, 5 per hour): a customer's alerts
past it are merged into a digest after `merge_wait` and would measure the cap, not the
stream. Use many customers (`SANDBOX_CUSTOMER_COUNT`, up to 9999) and a fresh stack per run;
the bench warns when the alerts per customer come near the cap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.alertbench.measure import percentile  # noqa: E402
from fiflow.integrations.settings import Settings  # noqa: E402
from fiflow.sandbox.transaction_feed import ALERT_MERCHANT  # noqa: E402

DEFAULTS = Settings.model_fields
ALERT_CAP = 5  # alerts.yaml sms_alert_cap.max_alerts (per number per hour)
GROWING_SHARE = 0.01  # a lag slope above this share of the rate counts as growing


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (ports default to `fiflow up`'s defaults)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sandbox", default="http://127.0.0.1:8100", help="the sandbox's URL")
    p.add_argument("--nats", default="nats://127.0.0.1:4222", help="the stack's NATS URL")
    p.add_argument("--stream", default=DEFAULTS["feed_stream"].default)
    p.add_argument("--consumer", default=DEFAULTS["feed_consumer"].default)
    p.add_argument("--subject", default=DEFAULTS["feed_subject"].default)
    p.add_argument("--rate", type=float, default=2000.0, help="transactions per second")
    p.add_argument("--seconds", type=float, default=60.0, help="how long to publish")
    p.add_argument("--alert-share", type=float, default=0.01, help="share of alerting rows")
    p.add_argument(
        "--customers",
        type=int,
        default=None,
        help="use this many SMS customers (default: every one the sandbox has)",
    )
    p.add_argument("--seed", type=int, default=None, help="generator seed (default: the time)")
    p.add_argument("--sample-every", type=float, default=0.5, help="seconds between samples")
    p.add_argument("--drain-seconds", type=float, default=60.0, help="wait for lag 0 this long")
    p.add_argument("--sms-timeout", type=float, default=60.0, help="wait for the SMS this long")
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON line here")
    return p.parse_args(argv)


def log(message: str) -> None:
    """Progress, on stderr."""
    print(f"[feeds_stream] {message}", file=sys.stderr, flush=True)


@dataclass
class Sample:
    """One look at the consumer."""

    at: float  # unix time
    pending: int
    ack_pending: int

    @property
    def lag(self) -> int:
        """Messages not yet acknowledged."""
        return self.pending + self.ack_pending


@dataclass
class Sampler:
    """Samples the consumer until stopped."""

    samples: list[Sample] = field(default_factory=list)
    errors: int = 0


def slope(points: list[tuple[float, float]]) -> float | None:
    """The least-squares slope of y over x (None for fewer than two distinct x)."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / var


def lag_figures(samples: list[Sample], start: float, end: float, rate: float) -> dict[str, Any]:
    """Lag p50/p99/max over the publishing window, and its slope over the second half."""
    window = [s for s in samples if start <= s.at <= end]
    lags = [float(s.lag) for s in window]
    half = start + (end - start) / 2
    trend = slope([(s.at - start, float(s.lag)) for s in window if s.at >= half])
    return {
        "samples": len(window),
        "lag_p50": percentile(lags, 50),
        "lag_p99": percentile(lags, 99),
        "lag_max": max(lags) if lags else None,
        "lag_slope_per_s": None if trend is None else round(trend, 2),
        "lag_growing": None if trend is None else trend > GROWING_SHARE * rate,
    }


def pair_sms(
    alerting: list[dict[str, Any]], sms: dict[str, list[dict[str, Any]]]
) -> tuple[list[float], int]:
    """Publish-ack -> SMS sent (seconds) per alerting transaction, and how many lack an SMS.

    Per customer, the alerting transactions in publish order are paired with the customer's
    alert SMS in send order.
    """
    by_customer: dict[str, list[float]] = defaultdict(list)
    for a in alerting:
        by_customer[a["customer_id"]].append(float(a["published_at"]))
    latencies: list[float] = []
    missing = 0
    for customer, published in by_customer.items():
        sent = sorted(parse_time(m["sent_at"]) for m in sms.get(customer, []))
        for i, at in enumerate(sorted(published)):
            if i < len(sent):
                latencies.append(sent[i] - at)
            else:
                missing += 1
    return latencies, missing


def parse_time(text: str) -> float:
    """An ISO 8601 instant (Z or offset) as unix time."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def is_alert_sms(message: dict[str, Any]) -> bool:
    """An alert SMS about a generated alerting transaction (not a notice, not a digest)."""
    body = str(message.get("body", ""))
    return ALERT_MERCHANT[0] in body and "Reply" in body


async def sample_consumer(
    js: Any, stream: str, consumer: str, every: float, sampler: Sampler, stop: asyncio.Event
) -> None:
    """The lag every `every` seconds until `stop`: summed over the stream's consumers (the
    legacy subject's `consumer` and one per partition, `<consumer>-p<N>`)."""
    while not stop.is_set():
        began = time.monotonic()
        try:
            infos = [
                i
                for i in await js.consumers_info(stream)
                if i.name == consumer or i.name.startswith(f"{consumer}-p")
            ]
        except Exception:  # noqa: BLE001 - counted and shown; the run goes on
            sampler.errors += 1
        else:
            sampler.samples.append(
                Sample(
                    time.time(),
                    sum(int(i.num_pending or 0) for i in infos),
                    sum(int(i.num_ack_pending or 0) for i in infos),
                )
            )
        await asyncio.sleep(max(0.0, every - (time.monotonic() - began)))


async def find_sms(
    http: httpx.AsyncClient, phones: dict[str, str], expected: dict[str, int], within: float
) -> dict[str, list[dict[str, Any]]]:
    """Each customer's alert SMS, long-polling until there are as many as expected."""
    deadline = time.monotonic() + within
    found: dict[str, list[dict[str, Any]]] = {}
    limit = asyncio.Semaphore(64)

    async def one(customer: str, want: int) -> None:
        async with limit:
            seen: list[dict[str, Any]] = []
            while True:
                left = deadline - time.monotonic()
                alerts = [m for m in seen if is_alert_sms(m)]
                if len(alerts) >= want or left <= 0:
                    found[customer] = alerts
                    return
                params: dict[str, Any] = {
                    "to": phones[customer],
                    "after": len(seen),
                    "wait": min(left, 25.0),
                }
                resp = await http.get("/__sandbox/sms/outbox", params=params, timeout=35)
                resp.raise_for_status()
                seen.extend(resp.json())

    await asyncio.gather(*(one(c, n) for c, n in expected.items()))
    return found


def figures(
    args: argparse.Namespace,
    run: dict[str, Any],
    sampler: Sampler,
    drained_after: float | None,
    latencies: list[float],
    missing: int,
    customers: int,
) -> dict[str, Any]:
    """Everything the report shows."""
    start, end = float(run["started_at"]), float(run.get("finished_at") or time.time())
    lag = lag_figures(sampler.samples, start, end, args.rate)
    published = int(run.get("published", 0))
    seconds = max(end - start, 1e-9)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        "rate": args.rate,
        "seconds": args.seconds,
        "alert_share": args.alert_share,
        "customers": customers,
        "run_state": run.get("state"),
        "planned": run.get("planned"),
        "published": published,
        "publish_failed": run.get("failed", 0),
        "published_per_s": round(published / seconds, 1),
        **lag,
        "sample_errors": sampler.errors,
        "drained_after_s": None if drained_after is None else round(drained_after, 2),
        "alerts": len(run.get("alerting", [])),
        "alert_sms_found": len(latencies),
        "alert_sms_missing": missing,
        "sms_p50_ms": ms(percentile(latencies, 50)),
        "sms_p95_ms": ms(percentile(latencies, 95)),
        "sms_p99_ms": ms(percentile(latencies, 99)),
        "sms_max_ms": ms(max(latencies) if latencies else None),
        "target_lag_not_growing": None if lag["lag_growing"] is None else not lag["lag_growing"],
        "target_sms_p99_le_1s": None if not latencies else (percentile(latencies, 99) or 0) <= 1,
    }


async def run_bench(args: argparse.Namespace) -> int:
    """The benchmark; the process exit code."""
    import nats  # a dependency of fiflow's feed

    async with httpx.AsyncClient(base_url=args.sandbox, timeout=30) as http:
        try:
            (await http.get("/__sandbox/health")).raise_for_status()
            everyone = (await http.get("/__sandbox/customers")).json()
        except httpx.HTTPError as exc:
            log(f"the sandbox at {args.sandbox} is unreachable: {exc}")
            return 2
        try:
            nc = await nats.connect(args.nats, connect_timeout=5, max_reconnect_attempts=1)
        except Exception as exc:  # noqa: BLE001 - the message says what
            log(f"NATS at {args.nats} is unreachable: {type(exc).__name__}: {exc}")
            return 2
        try:
            js = nc.jetstream()
            try:
                await js.consumer_info(args.stream, args.consumer, timeout=5)
            except Exception as exc:  # noqa: BLE001
                log(f"no consumer {args.consumer} on {args.stream} (is `fiflow feed` up?): {exc}")
                return 2
            sms_customers = sorted(
                (c for c in everyone if c.get("preferred_channel") == "sms" and c.get("phone")),
                key=lambda c: c["customer_id"],
            )[: args.customers]
            phones = {c["customer_id"]: c["phone"] for c in sms_customers}
            expected_alerts = args.rate * args.seconds * args.alert_share
            per_customer = expected_alerts / max(1, len(phones))
            log(
                f"{len(phones)} SMS customers, about {expected_alerts:.0f} alerts "
                f"({per_customer:.2f} per customer)"
            )
            if per_customer > ALERT_CAP / 4:
                log(
                    f"warning: near the per-number alert cap ({ALERT_CAP}/h): start the stack "
                    "with SANDBOX_CUSTOMER_COUNT=9999 (a fresh stack per run)"
                )
            sampler, stop = Sampler(), asyncio.Event()
            sampling = asyncio.create_task(
                sample_consumer(js, args.stream, args.consumer, args.sample_every, sampler, stop)
            )
            body: dict[str, Any] = {
                "rate": args.rate,
                "seconds": args.seconds,
                "alert_share": args.alert_share,
                "subject": args.subject,
                "customers": list(phones),
                "seed": args.seed if args.seed is not None else int(time.time()) % 2**31,
            }
            resp = await http.post("/__sandbox/feeds/stream", json=body)
            if resp.status_code != 202:
                stop.set()
                await sampling
                log(f"the stream run was refused: {resp.status_code} {resp.text}")
                return 1
            run_id = resp.json()["run_id"]
            log(f"stream run {run_id}: {body['rate']}/s for {body['seconds']} s")
            while True:
                await asyncio.sleep(1.0)
                run = (await http.get(f"/__sandbox/feeds/stream/{run_id}")).json()
                if run["state"] != "running":
                    break
                log(f"published {run['published']}/{run['planned']}")
            ended = time.time()
            drained_after: float | None = None
            while time.time() - ended < args.drain_seconds:
                recent = [s for s in sampler.samples if s.at >= ended]
                if recent and recent[-1].lag == 0:
                    drained_after = recent[-1].at - ended
                    break
                await asyncio.sleep(args.sample_every)
            stop.set()
            await sampling
            log(f"run {run['state']}; lag drained: {drained_after}")
            alerting = run.get("alerting", [])
            expected: dict[str, int] = defaultdict(int)
            for a in alerting:
                expected[a["customer_id"]] += 1
            sms = await find_sms(http, phones, expected, args.sms_timeout)
            latencies, missing = pair_sms(alerting, sms)
        finally:
            await nc.close()

    result = figures(args, run, sampler, drained_after, latencies, missing, len(phones))
    for key, value in result.items():
        print(f"{key}: {value}")
    line = json.dumps({"bench": "feeds_stream", **result}, sort_keys=True)
    print(line, flush=True)
    if args.json_out is not None:
        args.json_out.write_text(line + "\n")
    return 0 if result["run_state"] == "done" and missing == 0 else 1


def main() -> None:
    """Entry point."""
    args = parse_args()
    if not (args.rate > 0 and args.seconds > 0 and 0 <= args.alert_share <= 1):
        sys.exit("rate and seconds must be positive, alert-share within 0..1")
    if math.isinf(args.rate * args.seconds):
        sys.exit("rate x seconds is too large")
    sys.exit(asyncio.run(run_bench(args)))


if __name__ == "__main__":
    main()
