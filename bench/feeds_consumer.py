"""Stream consumer throughput: a backlog on JetStream, drained by `fiflow feed` processes.

    .venv/bin/python bench/feeds_consumer.py --transactions 20000 --consumers 1

A focused companion of bench/feeds_stream.py (which needs a whole `fiflow up`): it measures
only what one `fiflow feed` process screens and starts per second. It starts its own
nats-server and Temporal dev server (no workers: the starts are stored, nothing runs, so the
figure is the consumer's, not the workers'), publishes `--transactions` generated sandbox
transactions (the shipped rules: the FI's default preferences make notices, `--alert-share`
of them fraud alerts) as a backlog, then runs `--consumers` `fiflow feed` processes
(index i of N, as `fiflow up --feed-consumers N` does) and samples the consumers' lag.

Throughput is the acknowledged messages per second between 10 % and 90 % of the backlog
(start-up and the tail excluded). stdout: one figure per line, then one JSON line. It never
asserts on timings; the figures depend on the machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fiflow.domain.search_attributes import cli_flags  # noqa: E402
from fiflow.integrations.database import upgrade_database  # noqa: E402
from fiflow.integrations.nats_stream import (  # noqa: E402
    connect_nats,
    ensure_streams,
    publish_transactions,
)
from fiflow.integrations.settings import Settings  # noqa: E402
from fiflow.sandbox.seed import build_customers  # noqa: E402
from fiflow.sandbox.transaction_feed import (  # noqa: E402
    FeedMix,
    cards_frame,
    generate_transactions,
    to_ndjson_lines,
)
from tests.nats_server import nats_server  # noqa: E402
from tests.sandbox.servers import free_port  # noqa: E402

BIN = Path(sys.executable).parent
PROFILED = """
import asyncio, cProfile
from fiflow.integrations.settings import Settings
from fiflow.workers.feed_consumer import run_consumer
cProfile.run("asyncio.run(run_consumer(Settings()))", {out!r})
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--transactions", type=int, default=20_000)
    p.add_argument("--customers", type=int, default=2_000, help="sandbox customers (<= 9999)")
    p.add_argument("--consumers", type=int, default=1, help="`fiflow feed` processes")
    p.add_argument("--alert-share", type=float, default=0.01)
    p.add_argument("--legacy", action="store_true", help="publish to the plain legacy subject")
    p.add_argument("--profile", type=Path, default=None, help="cProfile consumer 0 into this")
    p.add_argument(
        "--code",
        type=Path,
        default=None,
        help="run the consumers from this checkout (e.g. `git archive` of an older commit)",
    )
    p.add_argument(
        "--expect-consumers",
        type=int,
        default=None,
        help="durable consumers to wait for before sampling (default: partitions + 1; "
        "1 for a --code checkout from before the partitions)",
    )
    p.add_argument("--timeout", type=float, default=600.0, help="give up draining after this")
    return p.parse_args(argv)


def log(message: str) -> None:
    """Progress, on stderr."""
    print(f"[feeds_consumer] {message}", file=sys.stderr, flush=True)


def _wait_port(port: int, within: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def _spawn(
    command: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    # The consumers' log goes to stderr with the bench's progress; their stdout is quiet.
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        proc.wait(timeout=60)


async def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Run once; the figures."""
    temporal_port = free_port()
    temporal = _spawn(
        [str(BIN / "temporal"), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
         "--port", str(temporal_port), "--log-level", "error", *cli_flags()],
        dict(os.environ),
    )  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with nats_server(work / "nats") as nats_url:
            _wait_port(temporal_port)
            db = f"sqlite:///{work / 'fiflow.db'}"
            upgrade_database(db)
            env = {
                **os.environ,
                "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
                "FIFLOW_NATS_URL": nats_url,
                "FIFLOW_DATABASE_URL": db,
                "FIFLOW_PAYLOAD_ENCRYPTION": "false",
                "FIFLOW_FEED_CONSUMER_COUNT": str(args.consumers),
            }
            settings = Settings(nats_url=nats_url, database_url=db, payload_encryption=False)
            cards = cards_frame(build_customers(count=args.customers))
            frame = generate_transactions(
                cards, args.transactions, mix=FeedMix(alert_share=args.alert_share)
            )
            lines = to_ndjson_lines(frame)
            ids = frame["transaction_id"].to_list()
            customers = frame["customer_id"].to_list()
            nc = await connect_nats(settings, "bench")
            js = nc.jetstream()
            await ensure_streams(js, settings)
            began = time.monotonic()
            for start in range(0, len(lines), 1000):
                end = start + 1000
                chunk = list(
                    zip(ids[start:end], customers[start:end], lines[start:end], strict=True)
                )
                if args.legacy:
                    for tid, _, body in chunk:
                        await js.publish(settings.feed_subject, body, headers={"Nats-Msg-Id": tid})
                else:
                    await publish_transactions(js, settings, chunk)
            log(f"published {len(lines)} in {time.monotonic() - began:.1f}s")
            # The window bucket's reads and writes, counted from copies of the requests (core
            # NATS hands every subscriber a copy): a figure the machine's load does not move.
            kv_ops = {"reads": 0, "writes": 0}

            def counter(kind: str) -> Callable[[Msg], Awaitable[None]]:
                async def count(_msg: Msg) -> None:
                    kv_ops[kind] += 1

                return count

            bucket = settings.feed_window_bucket
            for subject, kind in (
                (f"$KV.{bucket}.>", "writes"),
                (f"$JS.API.DIRECT.GET.KV_{bucket}", "reads"),
                (f"$JS.API.DIRECT.GET.KV_{bucket}.>", "reads"),
                (f"$JS.API.STREAM.MSG.GET.KV_{bucket}", "reads"),
            ):
                await nc.subscribe(subject, cb=counter(kind))
            for i in range(args.consumers):
                command = [sys.executable, "-m", "fiflow.starters.cli", "feed"]
                if args.profile is not None and i == 0:
                    # run_consumer returns on SIGTERM, so cProfile writes its file.
                    command = [sys.executable, "-c", PROFILED.format(out=str(args.profile))]
                own = {**env, "FIFLOW_FEED_CONSUMER_INDEX": str(i)}
                if args.code is not None:
                    # The checkout's package, not the installed one (cwd comes first for -m).
                    own["PYTHONPATH"] = str(args.code.resolve())
                procs.append(_spawn(command, own, args.code))
            total = len(lines)
            # The legacy subject's consumer and one per partition (code from before the
            # partitions: one in all, say so with --expect-consumers 1).
            expect = args.expect_consumers or settings.feed_partitions + 1
            samples: list[tuple[float, int]] = []  # (time, acknowledged)
            deadline = time.monotonic() + args.timeout
            jsm = nc.jsm()
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                infos = await jsm.consumers_info(settings.feed_stream)
                if len(infos) < expect:
                    # Not every durable consumer exists yet: the sum would miss their lag.
                    continue
                lag = sum(int(i.num_pending or 0) + int(i.num_ack_pending or 0) for i in infos)
                acked = total - lag
                samples.append((time.monotonic(), acked))
                if lag == 0 and acked == total:
                    break
            await nc.close()
            cpu = sum(_cpu_seconds(p.pid) for p in procs)
            _stop(procs)
    finally:
        _stop(procs)
        temporal.terminate()
        temporal.wait(timeout=30)

    def at(share: float) -> tuple[float, int]:
        return next(s for s in samples if s[1] >= share * total)

    (t1, a1), (t2, a2) = at(0.1), at(0.9)
    rate = (a2 - a1) / max(t2 - t1, 1e-9)
    return {
        "transactions": total,
        "consumers": args.consumers,
        "customers": args.customers,
        "subject": "legacy" if args.legacy else "partitioned",
        "drained": samples[-1][1] == total,
        "tx_per_s": round(rate, 1),
        "tx_per_s_per_consumer": round(rate / args.consumers, 1),
        "max_lag": total - min(a for _, a in samples),
        # Less sensitive to a shared machine than the rate: CPU the consumers spent per
        # transaction (start-up and idle polling included).
        "consumer_cpu_ms_per_tx": round(cpu * 1000 / total, 2),
        "kv_reads_per_tx": round(kv_ops["reads"] / total, 3),
        "kv_writes_per_tx": round(kv_ops["writes"] / total, 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    """Entry point."""
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="fiflow-bench-") as work:
        result = asyncio.run(bench(args, Path(work)))
    for key, value in result.items():
        print(f"{key}: {value}")
    print(json.dumps({"bench": "feeds_consumer", **result}, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
