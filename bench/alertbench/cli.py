"""The command line: find both knees (the default), run one rate, or compare scale-out.

    python -m bench.alertbench                           # floor knee, alert knee, half knee
    python -m bench.alertbench --rate 10 --duration 60   # one rate, alerts only (as before)
    python -m bench.alertbench --scaleout one.json two.json

Exit code: 0 when the run finished (single-rate mode: and every flow completed), 1 when
flows failed in single-rate mode, 2 when the stack is unreachable or misconfigured.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
from temporalio.client import Client

from bench.alertbench import accounting, floor, load, report, scaleout
from bench.alertbench.knee import find_knee
from bench.alertbench.measure import (
    BENCH_PROCESS,
    FlowResult,
    Gate,
    LoopTimes,
    Step,
    cpu_delta,
    parse_cpu_list,
    pin,
    read_stack_status,
    snapshot,
    stack_processes,
    unpin,
    worker_count,
)
from bench.alertbench.options import Options


class Load(Protocol):
    """What a flow's load generator offers (AlertLoad, FloorLoad)."""

    flow: str
    latencies: tuple[str, ...]

    async def run(self, rate: float, duration: float) -> tuple[list[FlowResult], LoopTimes]: ...


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line."""
    d = Options()
    p = argparse.ArgumentParser(
        prog="python -m bench.alertbench",
        description="Fraud alerts against the floor flow on a running `fiflow up` stack.",
    )
    p.add_argument("--api", default=d.api, help="fiflow API base URL")
    p.add_argument("--sandbox", default=d.sandbox, help="sandbox base URL")
    p.add_argument("--temporal", default=d.temporal, help="Temporal frontend host:port")
    p.add_argument("--namespace", default=d.namespace, help="Temporal namespace")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=d.state_dir,
        help="the stack's state directory (status.json: processes; payload.key)",
    )
    p.add_argument("--api-key", default=d.api_key, help="X-API-Key header")
    p.add_argument("--reply", choices=("yes", "no", "mixed"), default=d.reply)
    p.add_argument("--timeout", type=float, default=d.timeout, help="deadline of each step, s")
    p.add_argument("--max-in-flight", type=int, default=d.max_in_flight)
    p.add_argument("--connections", type=int, default=d.connections, help="HTTP pool size")
    p.add_argument(
        "--history-sample",
        type=int,
        default=d.history_sample,
        help="completed workflows per kind whose history is counted",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="floor worker processes (default: as many worker-N parts as the stack runs)",
    )
    p.add_argument(
        "--flows",
        default=None,
        help="comma-separated: floor,alert (default both; alert alone with --rate)",
    )
    p.add_argument("--rate", type=float, default=None, help="single-rate mode: flows per second")
    p.add_argument("--duration", type=float, default=d.duration, help="single-rate window, s")
    p.add_argument("--start-rate", type=float, default=d.start_rate, help="knee search start")
    p.add_argument("--max-rate", type=float, default=d.max_rate, help="knee search cap")
    p.add_argument("--step-seconds", type=float, default=d.step_seconds, help="each knee step")
    p.add_argument("--bisect-steps", type=int, default=d.bisect_steps)
    p.add_argument(
        "--resolution",
        type=float,
        default=d.resolution,
        help="stop bisecting when the gap is this fraction of the knee",
    )
    p.add_argument("--settle-seconds", type=float, default=d.settle_seconds)
    p.add_argument(
        "--half-seconds",
        type=float,
        default=d.half_seconds,
        help="the run at half the alert knee (0: none)",
    )
    p.add_argument(
        "--warmup-seconds",
        type=float,
        default=None,
        help=f"unmeasured run at the start rate first (default {d.warmup_seconds:g} s; "
        "none in single-rate mode)",
    )
    p.add_argument("--knee-p99-ms", type=float, default=d.knee_p99_s * 1000)
    p.add_argument("--half-sms-p99-ms", type=float, default=d.half_sms_p99_s * 1000)
    p.add_argument("--half-fraud-p99-ms", type=float, default=d.half_fraud_p99_s * 1000)
    p.add_argument(
        "--pin-server",
        default=None,
        help="CPU list for every stack process but the workers (scale-out runs)",
    )
    p.add_argument(
        "--pin-workers",
        default=None,
        help="CPU list for the stack's workers and the floor workers",
    )
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON line here")
    p.add_argument(
        "--scaleout",
        nargs=2,
        type=Path,
        default=None,
        metavar=("ONE.json", "TWO.json"),
        help="compare two saved runs (1 worker, 2 workers) instead of running",
    )
    ns = p.parse_args(argv)
    flows = tuple(ns.flows.split(",")) if ns.flows else (("alert",) if ns.rate else d.flows)
    if set(flows) - {"floor", "alert"}:
        p.error("--flows takes floor, alert or both")
    positive = (ns.timeout, ns.duration, ns.start_rate, ns.max_rate, ns.step_seconds)
    if min(positive) <= 0 or ns.max_in_flight < 1 or (ns.rate is not None and ns.rate <= 0):
        p.error("rates, durations, --timeout and --max-in-flight must be positive")
    return Options(
        api=ns.api.rstrip("/"),
        sandbox=ns.sandbox.rstrip("/"),
        temporal=ns.temporal,
        namespace=ns.namespace,
        state_dir=ns.state_dir,
        api_key=ns.api_key,
        reply=ns.reply,
        timeout=ns.timeout,
        max_in_flight=ns.max_in_flight,
        connections=ns.connections,
        history_sample=ns.history_sample,
        workers=ns.workers,
        flows=flows,
        rate=ns.rate,
        duration=ns.duration,
        start_rate=ns.start_rate,
        max_rate=ns.max_rate,
        step_seconds=ns.step_seconds,
        bisect_steps=ns.bisect_steps,
        resolution=ns.resolution,
        settle_seconds=ns.settle_seconds,
        half_seconds=ns.half_seconds,
        warmup_seconds=(
            ns.warmup_seconds
            if ns.warmup_seconds is not None
            else (0.0 if ns.rate is not None else d.warmup_seconds)
        ),
        knee_p99_s=ns.knee_p99_ms / 1000,
        half_sms_p99_s=ns.half_sms_p99_ms / 1000,
        half_fraud_p99_s=ns.half_fraud_p99_ms / 1000,
        pin_server=ns.pin_server,
        pin_workers=ns.pin_workers,
        json_out=ns.json_out,
        scaleout=tuple(ns.scaleout) if ns.scaleout else None,
    )


def say(message: str) -> None:
    """Progress on stderr; stdout carries only the table and the JSON line."""
    print(message, file=sys.stderr, flush=True)


def options_json(opts: Options) -> dict[str, Any]:
    """The options for the JSON line, secrets left out."""
    out = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()}
    out.pop("api_key", None)
    return out


class Bench:
    """One benchmark run: the stack's processes, clients, and the measured steps."""

    def __init__(self, opts: Options, processes: dict[str, int], temporal: Client) -> None:
        self.opts = opts
        self.processes = processes  # name -> pid, CPU measured for each
        self.temporal = temporal
        self.run_id = uuid.uuid4().hex[:8]

    async def step(self, load: Load, rate: float, duration: float, gates: tuple[Gate, ...]) -> Step:
        """One measured fixed-rate run, CPU read before and after (start to drained)."""
        before = snapshot(self.processes)
        started = time.time()
        results, times = await load.run(rate, duration)
        after = snapshot(self.processes)
        step = Step(
            flow=load.flow,
            rate=rate,
            duration=duration,
            results=results,
            times=times,
            cpu=cpu_delta(before, after),
            latencies=load.latencies,
            gates=gates,
            started_wall=started,
            ended_wall=time.time(),
        )
        s = step.summary()
        gate_text = ", ".join(
            f"{name} p99 {report.fmt(g['p99_ms'], ' ms')}" for name, g in s["gates"].items()
        )
        say(
            f"{load.flow} {rate:g}/s x {duration:g} s: {'pass' if s['passed'] else 'FAIL'}; "
            f"{s['completed']}/{s['posted']} completed, {s['throughput_per_s']:.2f}/s; "
            f"{gate_text}; CPU/flow {report.fmt(s['cpu_per_flow_s'].get('all'), ' s')}"
        )
        await asyncio.sleep(self.opts.settle_seconds)
        return step

    async def phase(
        self, load: Load, gates: tuple[Gate, ...]
    ) -> tuple[dict[str, Any], Step | None]:
        """Single-rate run or knee search for one flow: its summary part, and the step whose
        histories are counted (the knee step, else the last one run)."""
        opts = self.opts
        if opts.warmup_seconds > 0:
            rate = opts.rate or opts.start_rate
            say(f"{load.flow}: warming up at {rate:g}/s for {opts.warmup_seconds:g} s")
            await load.run(rate, opts.warmup_seconds)
            await asyncio.sleep(opts.settle_seconds)
        if opts.rate is not None:
            step = await self.step(load, opts.rate, opts.duration, gates)
            return {"steps": [step.summary()], "knee_step": step.summary()}, step
        found = await find_knee(
            lambda rate: self.step(load, rate, opts.step_seconds, gates),
            lambda step: step.passed(),
            start=opts.start_rate,
            max_rate=opts.max_rate,
            bisect_steps=opts.bisect_steps,
            resolution=opts.resolution,
        )
        knee_step = found.at(found.knee)
        # Nothing passed: the histories are still worth counting, from the last step.
        counted = knee_step or (found.steps[-1][2] if found.steps else None)
        part = {
            "knee": {"rate": found.knee, "capped": found.capped, "first_fail": found.first_fail},
            "steps": [s.summary() for _, _, s in found.steps],
            "knee_step": knee_step.summary() if knee_step else None,
        }
        return part, counted

    async def floor_phase(self, workers: int) -> dict[str, Any]:
        """The floor flow on `workers` processes of the bench's own, then its accounting."""
        opts = self.opts
        queue = f"bench-floor-{self.run_id}"
        procs = floor.FloorWorkers(opts, workers, queue)
        flow_load = floor.FloorLoad(opts, self.temporal, queue, self.run_id)
        say(f"floor: starting {workers} worker process(es) on task queue {queue}")
        await procs.start()
        pinned: dict[int, set[int]] = {}
        try:
            await flow_load.open()
            if opts.pin_workers:
                for pid in procs.pids.values():
                    pinned.update(pin(pid, parse_cpu_list(opts.pin_workers)))
            self.processes.update(procs.pids)
            gates = (
                Gate(floor.ACTIVITY_GATE, opts.knee_p99_s),
                Gate(floor.SIGNAL_GATE, opts.knee_p99_s),
            )
            part, knee_step = await self.phase(flow_load, gates)
        finally:
            await flow_load.close()
            await procs.stop()
            for name in procs.pids:
                self.processes.pop(name, None)
        if knee_step is not None:
            ids = [r.flow_id for r in knee_step.completed if r.flow_id][: opts.history_sample]
            try:
                part["accounting"] = await accounting.flows_figures(self.temporal, ids)
            except Exception as exc:  # the latency figures are still worth printing
                part["accounting"] = {"error": f"{type(exc).__name__}: {exc}"}
        return part

    async def alert_phase(self, alert_load: load.AlertLoad) -> dict[str, Any]:
        """The alert flow: knee (or one rate), the run at half the knee, its accounting."""
        opts = self.opts
        gates = (
            Gate(load.SMS_GATE, opts.knee_p99_s),
            Gate(load.FRAUD_GATE, opts.knee_p99_s),
        )
        part, counted = await self.phase(alert_load, gates)
        knee = (part.get("knee") or {}).get("rate")
        if knee and opts.half_seconds > 0:
            half = await self.step(alert_load, round(knee / 2, 3), opts.half_seconds, gates)
            part["half_knee"] = half.summary()
            counted = half
        part["poll_counts"] = alert_load.poll_counts()
        if counted is not None:
            part["accounting"] = await self.alert_accounting(counted)
            part["accounting"]["counted_at_rate"] = counted.rate
        return part

    async def alert_accounting(self, step: Step) -> dict[str, Any]:
        """Histories of a sample of the step's alerts, by answer, and the conversations."""
        opts = self.opts
        figures: dict[str, Any] = {}
        try:
            for answer, label in (("yes", "confirmed"), ("no", "contested")):
                ids = [
                    f"alert-{r.flow_id}" for r in step.completed if r.answer == answer and r.flow_id
                ][: opts.history_sample]
                figures[label] = await accounting.flows_figures(self.temporal, ids)
            accepted = sum(1 for r in step.results if r.flow_id is not None)
            window = (
                datetime.fromtimestamp(step.started_wall, UTC),
                datetime.fromtimestamp(step.ended_wall, UTC) + timedelta(seconds=1),
            )
            conv = await accounting.conversation_figures(self.temporal, window, accepted)
            figures["conversations"] = conv
            if figures["confirmed"].get("flows") and conv.get("flows"):
                figures["billable_per_confirmed_alert"] = round(
                    figures["confirmed"]["billable"] + conv["billable"], 2
                )
        except Exception as exc:  # the latency figures are still worth printing
            figures["error"] = f"{type(exc).__name__}: {exc}"
        return figures


def client_environment(opts: Options) -> None:
    """Point this process's fiflow settings at the stack, as `fiflow up` does its children."""
    env = floor.worker_env(opts)
    for key in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "FIFLOW_PAYLOAD_KEY_FILE"):
        if key in env:
            os.environ[key] = env[key]
    os.environ.pop("FIFLOW_METRICS_ADDRESS", None)


def pin_stack(opts: Options, processes: dict[str, int]) -> tuple[dict[int, set[int]], str | None]:
    """Apply --pin-server / --pin-workers to the stack's processes; previous affinities."""
    previous: dict[int, set[int]] = {}
    shown = []
    for option, is_worker in ((opts.pin_server, False), (opts.pin_workers, True)):
        if not option:
            continue
        cpus = parse_cpu_list(option)
        for name, pid in processes.items():
            if name != BENCH_PROCESS and name.startswith("worker-") == is_worker:
                previous.update(pin(pid, cpus))
        shown.append(f"{'workers' if is_worker else 'server'} {option}")
    return previous, ", ".join(shown) or None


async def main_async(opts: Options) -> int:
    """Run the benchmark and print the report; the process exit code."""
    from fiflow.integrations.settings import Settings
    from fiflow.integrations.temporal import connect

    status = read_stack_status(opts.state_dir)
    processes = stack_processes(status)
    if not processes:
        say(
            f"no running `fiflow up` in {opts.state_dir} (status.json): CPU figures cover only "
            "the bench's own processes; pass --state-dir"
        )
    workers = opts.workers or worker_count(processes)
    if "floor" in opts.flows and not workers:
        say("how many worker processes does the stack run? pass --workers N or --state-dir")
        return 2
    client_environment(opts)
    limits = httpx.Limits(
        max_connections=opts.connections, max_keepalive_connections=min(opts.connections, 20)
    )
    # Long-polls each hold a connection: no cap, or they would queue behind each other.
    poll_limits = httpx.Limits(max_connections=None, max_keepalive_connections=opts.connections)
    async with (
        httpx.AsyncClient(timeout=opts.timeout, limits=limits) as http,
        httpx.AsyncClient(timeout=opts.timeout, limits=poll_limits) as poll_http,
    ):
        part = f"Temporal {opts.temporal} namespace {opts.namespace}"
        targets: list[load.Target] = []
        try:
            temporal = await connect(Settings())
            if "alert" in opts.flows:
                part = f"API {opts.api}"
                (await http.get(f"{opts.api}/healthz")).raise_for_status()
                part = f"sandbox {opts.sandbox}"
                targets = await load.load_targets(http, opts.sandbox)
        except Exception as exc:  # unreachable stack: say which part and stop
            say(f"{part} not reachable: {type(exc).__name__}: {exc}")
            return 2
        if "alert" in opts.flows and not targets:
            say("the sandbox has no SMS customer with a card")
            return 2
        bench = Bench(opts, {**processes, BENCH_PROCESS: os.getpid()}, temporal)
        previous, pinned = pin_stack(opts, processes)
        summary: dict[str, Any] = {
            "run_id": bench.run_id,
            "mode": "single" if opts.rate is not None else "knee",
            "started_at": datetime.now(UTC).isoformat(),
            "options": options_json(opts),
            "stack": {"workers": workers, "processes": processes, "pinned": pinned},
        }
        say(
            f"run {bench.run_id}: flows {','.join(opts.flows)}, {workers} worker process(es), "
            f"{len(targets)} SMS customers, reply={opts.reply}"
        )
        alert_load = load.AlertLoad(opts, http, poll_http, temporal, targets, bench.run_id)
        try:
            if "floor" in opts.flows:
                summary["floor"] = await bench.floor_phase(workers)
            if "alert" in opts.flows:
                summary["alert"] = await bench.alert_phase(alert_load)
        finally:
            await alert_load.close()
            unpin(previous)
    summary["ratios"], summary["targets"] = report.ratios_and_targets(summary)
    report.print_report(summary)
    if opts.json_out is not None:
        opts.json_out.write_text(json.dumps(summary, sort_keys=True) + "\n")
    if opts.rate is not None:
        failed = sum(
            (summary.get(f) or {}).get("knee_step", {}).get("failed", 0) for f in opts.flows
        )
        return 1 if failed else 0
    return 0


def skip_missing_sniffio() -> None:
    """Make httpcore's per-request `import sniffio` fail fast when sniffio is not installed.

    httpcore retries that import on every request, and a failed import searches the whole
    path each time: about 0.4 ms per request, enough to skew a load generator.
    """
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]  # cached "not installed"


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run, flush, and exit without interpreter teardown (sdk-python #300)."""
    opts = parse_args(argv)
    if opts.scaleout is not None:
        one, two = (scaleout.load_summary(path) for path in opts.scaleout)
        scaleout.print_comparison(scaleout.compare(one, two))
        sys.stdout.flush()
        os._exit(0)
    skip_missing_sniffio()
    code = asyncio.run(main_async(opts))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
