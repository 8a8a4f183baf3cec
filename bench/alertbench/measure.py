"""Measurement: latency percentiles, CPU time per process, and what one step of load gave.

CPU time is read from `/proc/<pid>/stat` (utime + stime, plus the reaped children's cutime +
cstime) of every process of the stack and of each one's descendants, before and after a
step; the difference over the flows that completed is the CPU per flow. Latencies are in
seconds here and in milliseconds in the report.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fiflow.starters.supervisor import read_status

PROC = Path("/proc")
# Never counted in "all processes": the load generator is not part of the stack.
BENCH_PROCESS = "bench"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (nearest rank), or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(value: float | None) -> float | None:
    """Seconds to milliseconds, rounded for the report; None for none or infinity (JSON has
    no infinity: a gate whose p99 fell on a failed flow shows None and ok false)."""
    if value is None or math.isinf(value):
        return None
    return round(value * 1000, 1)


def latency_summary(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """n and p50/p95/p99/max in milliseconds over the values that were measured."""
    present = [v for v in values if v is not None]
    return {
        "n": len(present),
        "p50_ms": ms(percentile(present, 50)),
        "p95_ms": ms(percentile(present, 95)),
        "p99_ms": ms(percentile(present, 99)),
        "max_ms": ms(max(present) if present else None),
    }


def gate_p99(values: Sequence[float | None]) -> float | None:
    """p99 for a knee gate: a flow that never reached the step counts as infinitely slow.

    A rate where 2 % of the flows time out must not pass on the 98 % that were quick.
    """
    if not values:
        return None
    return percentile([math.inf if v is None else v for v in values], 99)


# --- CPU time from /proc ------------------------------------------------------------------


def parse_stat(text: str) -> tuple[int, int]:
    """(ppid, utime + stime + cutime + cstime in clock ticks) from a /proc/<pid>/stat line.

    The command name (field 2) is in parentheses and may hold spaces and parentheses, so
    the fields are counted from the last ')'.
    """
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
    ppid = int(rest[1])
    ticks = sum(int(x) for x in rest[11:15])
    return ppid, ticks


def read_stat(pid: int, proc: Path = PROC) -> tuple[int, int] | None:
    """parse_stat of a live process, or None when it is gone."""
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def process_table(proc: Path = PROC) -> dict[int, tuple[int, int]]:
    """Every visible process: pid -> (ppid, CPU ticks)."""
    table = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name), proc)
            if stat is not None:
                table[int(entry.name)] = stat
    return table


def tree_ticks(root: int, table: Mapping[int, tuple[int, int]]) -> int | None:
    """CPU ticks of a process and all its live descendants, or None when it is gone."""
    if root not in table:
        return None
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += table[pid][1]
        todo += children.get(pid, [])
    return total


def clock_ticks() -> int:
    """Clock ticks per second of /proc/<pid>/stat."""
    return os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds of each named process (with descendants) at one moment."""

    seconds: dict[str, float]


def snapshot(processes: Mapping[str, int], proc: Path = PROC) -> CpuSnapshot:
    """Read the CPU time of every named process now."""
    table = process_table(proc)
    hz = clock_ticks()
    seconds = {}
    for name, pid in processes.items():
        ticks = tree_ticks(pid, table)
        if ticks is not None:
            seconds[name] = ticks / hz
    return CpuSnapshot(seconds)


def cpu_delta(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU seconds each process used between two snapshots (those present in both).

    A process that restarted in between (lower figure after) is left out rather than
    counted negative.
    """
    used = {}
    for name, start in before.seconds.items():
        end = after.seconds.get(name)
        if end is not None and end >= start:
            used[name] = round(end - start, 3)
    return used


def stack_processes(status: Mapping[str, Any] | None) -> dict[str, int]:
    """Part name -> pid from `fiflow up`'s status.json (see fiflow.starters.supervisor)."""
    if not status:
        return {}
    return {
        str(part["name"]): int(part["pid"])
        for part in status.get("parts", [])
        if part.get("pid") and part.get("state", "running") == "running"
    }


def worker_count(processes: Iterable[str]) -> int:
    """How many `worker-N` parts the stack runs."""
    return sum(1 for name in processes if name.startswith("worker-"))


# --- one step of load ---------------------------------------------------------------------


@dataclass
class FlowResult:
    """What happened to one flow (an alert or a floor flow); latencies in seconds."""

    n: int
    answer: str = ""  # alerts: yes | no
    flow_id: str | None = None  # alert ID or floor workflow ID once accepted
    failed_step: str | None = None
    error: str = ""
    latency: dict[str, float | None] = field(default_factory=dict)
    completed_at: float | None = None  # perf_counter when the close event was seen


@dataclass(frozen=True)
class LoopTimes:
    """Timings of one open-loop run, in seconds."""

    window: float  # posting window: first scheduled start to the last one
    wall: float  # first start to the last flow settled
    max_lag: float  # worst start behind schedule: cap reached, or the generator starved
    last_completion: float  # first start to the last completion seen


@dataclass(frozen=True)
class Gate:
    """A knee criterion: the p99 of one latency must stay at or under a limit."""

    latency: str
    limit_s: float


@dataclass
class Step:
    """One fixed-rate run: its flows, timings and CPU, summarised by `summary`."""

    flow: str  # alert | floor
    rate: float
    duration: float
    results: list[FlowResult]
    times: LoopTimes
    cpu: dict[str, float]  # CPU seconds per process over the step (start to drained)
    latencies: tuple[str, ...]  # which latency keys this flow reports, in order
    gates: tuple[Gate, ...]
    started_wall: float = 0.0  # time.time() at the step's start
    ended_wall: float = 0.0

    @property
    def completed(self) -> list[FlowResult]:
        """Flows that went through every step."""
        return [r for r in self.results if r.failed_step is None]

    def gate_values(self) -> dict[str, float | None]:
        """The p99 each gate looks at (failed flows count as infinitely slow)."""
        return {
            g.latency: gate_p99([r.latency.get(g.latency) for r in self.results])
            for g in self.gates
        }

    def passed(self) -> bool:
        """Every gate's p99 within its limit (no flows at all is a failure)."""
        values = self.gate_values()
        return bool(self.results) and all(
            values[g.latency] is not None and values[g.latency] <= g.limit_s  # type: ignore[operator]
            for g in self.gates
        )

    def cpu_per_flow(self) -> dict[str, float | None]:
        """CPU seconds per completed flow, per process and for all stack processes together."""
        done = len(self.completed)
        per = {name: (round(s / done, 5) if done else None) for name, s in sorted(self.cpu.items())}
        stack = sum(s for name, s in self.cpu.items() if name != BENCH_PROCESS)
        per["all"] = round(stack / done, 5) if done else None
        return per

    def summary(self) -> dict[str, Any]:
        """Everything the report shows about this step, JSON-serialisable."""
        completed = self.completed
        failed = [r for r in self.results if r.failed_step is not None]
        accepted = sum(1 for r in self.results if r.flow_id is not None)
        window = self.times.window or self.duration
        stack_cpu = sum(s for name, s in self.cpu.items() if name != BENCH_PROCESS)
        wall = self.times.wall or window
        return {
            "flow": self.flow,
            "rate": round(self.rate, 3),
            "duration_s": self.duration,
            "posted": len(self.results),
            "accepted": accepted,
            "completed": len(completed),
            "failed": len(failed),
            "failed_by_step": dict(Counter(r.failed_step for r in failed if r.failed_step)),
            "example_errors": sorted({f"{r.failed_step}: {r.error}" for r in failed})[:5],
            "posting_window_s": round(window, 3),
            "wall_time_s": round(self.times.wall, 3),
            "drain_s": round(max(0.0, self.times.last_completion - window), 3),
            "max_start_lag_ms": round(self.times.max_lag * 1000, 1),
            "accepted_per_s": round(accepted / window, 3),
            "throughput_per_s": round(len(completed) / window, 3),
            "completion_throughput_per_s": (
                round(len(completed) / self.times.last_completion, 3)
                if self.times.last_completion
                else 0.0
            ),
            "latency": {
                key: latency_summary([r.latency.get(key) for r in self.results])
                for key in self.latencies
            },
            "gates": {
                g.latency: {
                    "limit_ms": ms(g.limit_s),
                    "p99_ms": ms(value),
                    "ok": value is not None and value <= g.limit_s,
                }
                for g in self.gates
                for value in [self.gate_values()[g.latency]]
            },
            "passed": self.passed(),
            "cpu_s": dict(sorted(self.cpu.items())),
            "cpu_per_flow_s": self.cpu_per_flow(),
            # Cores the stack kept busy over the step (start to drained).
            "stack_cores_busy": round(stack_cpu / wall, 2) if wall else None,
        }


# --- the stack's processes, and pinning them to CPUs ---------------------------------------


def read_stack_status(state_dir: Path) -> dict[str, Any] | None:
    """The status.json a running `fiflow up` wrote in state_dir, or None when none runs.

    Read by the supervisor's own reader: a pid alone may name another process (the stack was
    killed and its pid reused), so each recorded process must also have the start time
    recorded with it (/proc/<pid>/stat field 22). A part whose process is gone or replaced
    reads as `stopped`, and `stack_processes` leaves it out: its CPU is not the stack's.
    """
    return read_status(state_dir)


def parse_cpu_list(text: str) -> set[int]:
    """A Linux CPU list ("0-1,3") as a set of CPU numbers."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    if not cpus:
        raise ValueError(f"empty CPU list {text!r}")
    return cpus


def threads_of(pid: int, proc: Path = PROC) -> list[int]:
    """Every thread of a process and of its live descendants."""
    table = process_table(proc)
    children: dict[int, list[int]] = {}
    for child, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(child)
    tids, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            tids += [int(t.name) for t in (proc / str(current) / "task").iterdir()]
        except OSError:
            continue
        todo += children.get(current, [])
    return tids


def pin(pid: int, cpus: set[int]) -> dict[int, set[int]]:
    """Pin a process (every thread, and its descendants) to CPUs; the previous affinities.

    sched_setaffinity acts on one thread, so each thread is pinned; threads started later
    inherit their creator's affinity.
    """
    previous = {}
    for tid in threads_of(pid):
        try:
            previous[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, cpus)
        except OSError:
            continue  # the thread ended meanwhile
    return previous


def unpin(previous: Mapping[int, set[int]]) -> None:
    """Give threads back the affinity they had before `pin`."""
    for tid, cpus in previous.items():
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            continue
