"""The floor flow's worker processes and its load generator.

The benchmark starts N worker processes of its own for the floor flow, on a task queue of
its own, on the stack's Temporal server, while the stack's workers idle; N is the number
of `worker-N` parts the stack runs (or `--workers`). Each is configured like a stack
worker: the same client (`fiflow.integrations.temporal.connect`: pydantic converter,
payload encryption with the stack's key, tracing interceptor), the same workflow runner
(sandboxed unless FIFLOW_WORKFLOW_SANDBOX=false), the same activity slots. So the only
difference between the two measurements is the flow itself.

    python -m bench.alertbench.floor --task-queue QUEUE   # one floor worker (the bench runs it)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowHistoryEventFilterType

from bench.alertbench.accounting import event_name
from bench.alertbench.floor_models import FloorGo, FloorInput
from bench.alertbench.floor_workflow import FloorWorkflow, floor_step
from bench.alertbench.load import StepFailed, open_loop
from bench.alertbench.measure import FlowResult, LoopTimes
from bench.alertbench.options import Options

READY = "floor worker ready"
REPO = Path(__file__).resolve().parents[2]
WORKER_START_S = 60.0
WORKER_STOP_S = 15.0
LATENCIES = (
    "start_rtt",
    "start_to_activity_poll",
    "start_to_activity_recorded",
    "signal_to_complete_poll",
    "signal_to_complete_recorded",
    "end_to_end",
)
ACTIVITY_GATE = "start_to_activity_recorded"
SIGNAL_GATE = "signal_to_complete_recorded"


# --- the worker process -------------------------------------------------------------------


async def serve(task_queue: str) -> None:
    """Run one floor worker until SIGTERM/SIGINT."""
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

    from fiflow.integrations import telemetry
    from fiflow.integrations.settings import Settings
    from fiflow.integrations.temporal import connect

    settings = Settings()
    telemetry.setup("bench-floor", settings)
    client = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = SandboxedWorkflowRunner() if settings.workflow_sandbox else UnsandboxedWorkflowRunner()
    # The options fiflow.workers.main.build_worker and run_worker give a stack worker.
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[FloorWorkflow],
        activities=[floor_step],
        max_concurrent_activities=200,
        workflow_runner=runner,
        graceful_shutdown_timeout=timedelta(seconds=10),
    )
    async with worker:
        print(READY, flush=True)
        await stop.wait()


def worker_main(argv: Sequence[str] | None = None) -> None:
    """Entry point of one floor worker process."""
    parser = argparse.ArgumentParser(description="One floor-flow worker (started by the bench).")
    parser.add_argument("--task-queue", required=True)
    ns = parser.parse_args(argv)
    asyncio.run(serve(ns.task_queue))
    sys.stdout.flush()
    os._exit(0)  # sdk-python #300: no interpreter teardown after the worker has shut down


def worker_env(opts: Options) -> dict[str, str]:
    """The environment a stack worker gets from `fiflow up`, as far as the bench can tell."""
    env = dict(os.environ)
    env["TEMPORAL_ADDRESS"] = opts.temporal
    env["TEMPORAL_NAMESPACE"] = opts.namespace
    key_file = opts.state_dir / "payload.key"
    if "FIFLOW_PAYLOAD_KEYS" not in env and key_file.exists():
        env.setdefault("FIFLOW_PAYLOAD_KEY_FILE", str(key_file.resolve()))
    env.setdefault("FIFLOW_LOG_LEVEL", "WARNING")
    env.pop("FIFLOW_METRICS_ADDRESS", None)  # the stack's workers own those ports
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


class FloorWorkers:
    """N floor worker processes, started and stopped by the benchmark."""

    def __init__(self, opts: Options, count: int, task_queue: str) -> None:
        self.opts = opts
        self.count = count
        self.task_queue = task_queue
        self.procs: list[asyncio.subprocess.Process] = []
        self._pumps: list[asyncio.Task[None]] = []

    @property
    def pids(self) -> dict[str, int]:
        """Process name -> pid, for the CPU figures."""
        return {f"floor-{i + 1}": p.pid for i, p in enumerate(self.procs)}

    async def start(self) -> None:
        """Start every worker and wait until each polls its task queue."""
        env = worker_env(self.opts)
        args = ["-m", "bench.alertbench.floor", "--task-queue", self.task_queue]
        for i in range(self.count):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *args,
                cwd=REPO,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            self.procs.append(proc)
            name = f"floor-{i + 1}"
            async with asyncio.timeout(WORKER_START_S):
                await self._wait_ready(name, proc)
            self._pumps.append(asyncio.create_task(self._pump(name, proc)))

    async def _wait_ready(self, name: str, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{name} exited with {await proc.wait()} before it was ready")
            text = line.decode(errors="replace").rstrip()
            if text == READY:
                return
            print(f"{name}| {text}", file=sys.stderr, flush=True)

    async def _pump(self, name: str, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            print(f"{name}| {line.decode(errors='replace').rstrip()}", file=sys.stderr, flush=True)

    async def stop(self) -> None:
        """SIGTERM every worker; kill the ones that outstay the grace period."""
        for proc in self.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                async with asyncio.timeout(WORKER_STOP_S):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)


# --- the load generator -------------------------------------------------------------------


class _Listener(asyncio.DatagramProtocol):
    """Receives the floor activities' datagrams and wakes the flow waiting for each."""

    def __init__(self) -> None:
        self.waiters: dict[int, asyncio.Future[tuple[float, float]]] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        seen_at = time.perf_counter()
        with contextlib.suppress(ValueError):
            n_text, wall_text = data.decode().split()
            future = self.waiters.pop(int(n_text), None)
            if future is not None and not future.done():
                future.set_result((seen_at, float(wall_text)))


class FloorLoad:
    """The floor flow driven through the Temporal client: start, wait, signal, wait."""

    flow = "floor"
    latencies = LATENCIES

    def __init__(self, opts: Options, temporal: Client, task_queue: str, run_id: str) -> None:
        self.opts = opts
        self.temporal = temporal
        self.task_queue = task_queue
        self.run_id = run_id
        self._listener = _Listener()
        self._transport: asyncio.DatagramTransport | None = None
        self.notify = ""
        self._next = 0

    async def open(self) -> None:
        """Start the UDP listener the floor activities report to."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self._listener, local_addr=("127.0.0.1", 0)
        )
        self._transport = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self.notify = f"{host}:{port}"

    async def close(self) -> None:
        """Stop the listener."""
        if self._transport is not None:
            self._transport.close()

    async def run(self, rate: float, duration: float) -> tuple[list[FlowResult], LoopTimes]:
        """One open-loop run at `rate` flows/s for `duration` seconds."""
        first = self._next
        self._next += int(rate * duration) + 1
        return await open_loop(
            rate, duration, self.opts.max_in_flight, lambda i: self.run_flow(first + i)
        )

    async def run_flow(self, n: int) -> FlowResult:
        """One floor flow: start it, see its activity run, signal it, see it complete."""
        result = FlowResult(n=n)
        lat = result.latency
        timeout = self.opts.timeout
        workflow_id = f"bench-floor-{self.run_id}-{n:06d}"
        ran: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
        self._listener.waiters[n] = ran
        step = "start"
        try:
            wall_start, t_start = time.time(), time.perf_counter()
            async with asyncio.timeout(timeout):
                handle = await self.temporal.start_workflow(
                    FloorWorkflow.run,
                    FloorInput(n=n, notify=self.notify),
                    id=workflow_id,
                    task_queue=self.task_queue,
                )
            result.flow_id = workflow_id
            lat["start_rtt"] = time.perf_counter() - t_start

            step = "activity"
            async with asyncio.timeout(timeout):
                seen_at, ran_wall = await ran
            lat["start_to_activity_poll"] = seen_at - t_start
            lat["start_to_activity_recorded"] = ran_wall - wall_start

            step = "signal"
            wall_signal, t_signal = time.time(), time.perf_counter()
            async with asyncio.timeout(timeout):
                await handle.signal(FloorWorkflow.proceed, FloorGo(n=n))

            step = "complete"
            async with asyncio.timeout(timeout):
                events = handle.fetch_history_events(
                    wait_new_event=True,
                    event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT,
                )
                close = None
                async for event in events:
                    close = event
                    break
            result.completed_at = time.perf_counter()
            if close is None or event_name(close) != "WorkflowExecutionCompleted":
                shown = "nothing" if close is None else event_name(close)
                raise StepFailed("complete", f"workflow closed with {shown}")
            lat["signal_to_complete_poll"] = result.completed_at - t_signal
            closed_wall = close.event_time.ToNanoseconds() / 1e9
            lat["signal_to_complete_recorded"] = closed_wall - wall_signal
            lat["end_to_end"] = result.completed_at - t_start
        except StepFailed as exc:
            result.failed_step, result.error = exc.step, str(exc)
            result.completed_at = None
        except TimeoutError:
            result.failed_step, result.error = step, f"no result within {timeout:g}s"
        except Exception as exc:  # a benchmark reports every failure instead of stopping
            result.failed_step, result.error = step, f"{type(exc).__name__}: {exc}"
        finally:
            self._listener.waiters.pop(n, None)
        return result


if __name__ == "__main__":
    worker_main()
