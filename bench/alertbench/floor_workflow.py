"""The floor flow: start, one activity, one signal, completion; the least a flow can cost.

Kept in its own small module because the workflow sandbox re-imports it for every run, as
it does fiflow's workflow modules; models come in passed through, as fiflow's do.
"""

from __future__ import annotations

import socket
import time
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from bench.alertbench.floor_models import FloorGo, FloorInput, FloorOutcome, FloorStep

_udp: socket.socket | None = None


@activity.defn(name="bench_floor_step")
async def floor_step(step: FloorStep) -> FloorStep:
    """Tell the benchmark (one UDP datagram: flow number and wall time) that it ran."""
    global _udp
    if _udp is None:
        _udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        _udp.setblocking(False)
    host, port = step.notify.rsplit(":", 1)
    # A datagram costs this worker one syscall: less than the HTTP call the alert's SMS
    # activity makes to the sandbox, so the floor is not made dearer by being observed.
    _udp.sendto(f"{step.n} {time.time():.6f}".encode(), (host, int(port)))
    return step


@workflow.defn(name="BenchFloorWorkflow")
class FloorWorkflow:
    """Run one activity, wait for one signal, complete."""

    def __init__(self) -> None:
        self._go = False

    @workflow.run
    async def run(self, data: FloorInput) -> FloorOutcome:
        """The whole flow."""
        await workflow.execute_activity(
            floor_step,
            FloorStep(n=data.n, notify=data.notify),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
        await workflow.wait_condition(lambda: self._go)
        return FloorOutcome(n=data.n)

    @workflow.signal
    def proceed(self, signal: FloorGo) -> None:
        """The customer's answer, as it were."""
        self._go = True
