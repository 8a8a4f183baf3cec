"""Worker scale-out: compare two saved runs, one on a stack with 1 worker, one with 2.

The bench cannot restart the stack, so scale-out takes two runs of the bench, each saved
with `--json-out`: one against `fiflow up --workers 1`, one against `fiflow up --workers 2`
(same machine, same state of mind: a fresh stack each time). Two figures:

- measured: the alert throughput at the knee of run two over run one. It means worker
  scale-out only when the Temporal server (and API, sandbox) had a CPU budget of its own,
  so that adding a worker added CPU: run both with `--pin-server` / `--pin-workers` on a
  machine with enough cores (the server's set apart from the workers' set, the workers'
  set one core per worker), or on separate machines.
- server's share subtracted: each worker given one core of its own, the workers' capacity
  is `workers / worker CPU seconds per alert`; the figure is that capacity of run two over
  run one, from the CPU per alert at each knee. It shows what adding a worker costs per
  alert (cache misses, sticky queues lost, contention) without needing spare cores, but it
  is a model: it assumes the server keeps up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.alertbench.report import fmt, ratio, render_table

TARGET = 1.8


def load_summary(path: Path) -> dict[str, Any]:
    """A bench summary: the file is the JSON line itself, or a log whose last JSON line it is."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("{")]
    if not lines:
        raise ValueError(f"{path} holds no JSON summary line")
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


def run_figures(summary: Mapping[str, Any]) -> dict[str, Any]:
    """One run's figures for the comparison."""
    alert = summary.get("alert") or {}
    step = alert.get("knee_step") or {}
    cpu = step.get("cpu_per_flow_s") or {}
    cpu_s = step.get("cpu_s") or {}
    wall = step.get("wall_time_s") or None
    workers = (summary.get("stack") or {}).get("workers")
    worker_cpu = sum(v for k, v in cpu.items() if k.startswith("worker-") and v is not None)
    return {
        "workers": workers,
        "knee_rate": (alert.get("knee") or {}).get("rate"),
        "knee_capped": (alert.get("knee") or {}).get("capped"),
        "throughput_per_s": step.get("throughput_per_s"),
        "worker_cpu_per_alert_s": round(worker_cpu, 5) if worker_cpu else None,
        "worker_capacity_per_s": round(workers / worker_cpu, 2) if workers and worker_cpu else None,
        "server_cores_busy": round(cpu_s["temporal"] / wall, 2)
        if wall and "temporal" in cpu_s
        else None,
        "stack_cores_busy": step.get("stack_cores_busy"),
        "pinned": (summary.get("stack") or {}).get("pinned"),
    }


def compare(one: Mapping[str, Any], two: Mapping[str, Any]) -> dict[str, Any]:
    """Both runs' figures and the two scale-out ratios (run two over run one)."""
    a, b = run_figures(one), run_figures(two)
    measured = ratio(b["throughput_per_s"], a["throughput_per_s"])
    modelled = ratio(b["worker_capacity_per_s"], a["worker_capacity_per_s"])
    return {
        "one": a,
        "two": b,
        "measured_ratio": measured,
        "server_share_subtracted_ratio": modelled,
        "target": TARGET,
        "measured_ok": None if measured is None else measured >= TARGET,
        "server_share_subtracted_ok": None if modelled is None else modelled >= TARGET,
    }


def print_comparison(result: Mapping[str, Any]) -> None:
    """One table and one JSON line."""
    a, b = result["one"], result["two"]
    rows = [
        (label, fmt(a[key]), fmt(b[key]), fmt(ratio(b[key], a[key]) if key in RATIO_KEYS else None))
        for label, key in ROWS
    ]
    rows.append((f"target: measured ratio >= {TARGET}", "", "", fmt(result["measured_ratio"])))
    rows.append(
        (
            f"target: server's share subtracted ratio >= {TARGET}",
            "",
            "",
            fmt(result["server_share_subtracted_ratio"]),
        )
    )
    print(render_table(rows, ("figure", "run one", "run two", "two/one")))
    print(json.dumps(result, sort_keys=True), flush=True)


ROWS = (
    ("worker processes", "workers"),
    ("alert rate at the knee (/s)", "knee_rate"),
    ("knee capped by --max-rate", "knee_capped"),
    ("alert throughput at the knee (/s)", "throughput_per_s"),
    ("workers' CPU per alert (s)", "worker_cpu_per_alert_s"),
    ("workers' capacity, a core each (/s)", "worker_capacity_per_s"),
    ("Temporal server cores busy at the knee", "server_cores_busy"),
    ("stack cores busy at the knee", "stack_cores_busy"),
    ("pinned", "pinned"),
)
RATIO_KEYS = {"throughput_per_s", "worker_capacity_per_s", "worker_cpu_per_alert_s"}
