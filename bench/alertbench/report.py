"""The report: one table (floor | alert | alert/floor) and one JSON line, from the summary.

Everything printed is computed from the JSON-serialisable summary, so a saved JSON line
can be printed again (and compared, see `scaleout`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

# Corresponding latencies of the two flows: (label, floor key, alert key).
LATENCY_PAIRS = (
    ("request round trip (start | POST)", "start_rtt", "post_rtt"),
    ("to first effect, polled (activity | SMS)", "start_to_activity_poll", "post_to_sms_poll"),
    (
        "to first effect, recorded (activity | SMS)",
        "start_to_activity_recorded",
        "post_to_sms_recorded",
    ),
    (
        "answer to effect, polled (signal->done | reply->fraud)",
        "signal_to_complete_poll",
        "reply_to_fraud_poll",
    ),
    (
        "answer to effect, recorded (signal->done | reply->fraud)",
        "signal_to_complete_recorded",
        "reply_to_fraud_recorded",
    ),
    ("start to completed", "end_to_end", "end_to_end"),
)


def ratio(alert: float | None, floor: float | None) -> float | None:
    """alert / floor, rounded; None when either is missing or the floor is zero."""
    if alert is None or floor is None or floor == 0:
        return None
    return round(alert / floor, 3)


def fmt(value: Any, unit: str = "") -> str:
    """A cell: n/a for missing, numbers to a sensible precision."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        shown = f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
        return f"{shown}{unit}"
    return f"{value}{unit}"


def _get(data: Mapping[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def table_rows(summary: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """The rows of the table: (figure, floor, alert, alert/floor)."""
    floor = summary.get("floor") or {}
    alert = summary.get("alert") or {}
    f_step = floor.get("knee_step") or {}
    a_step = alert.get("knee_step") or {}
    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, f: Any, a: Any, unit: str = "", with_ratio: bool = True) -> None:
        r = ratio(a, f) if with_ratio and isinstance(a, int | float) else None
        rows.append((label, fmt(f, unit), fmt(a, unit), fmt(r)))

    def knee_cell(flow: Mapping[str, Any]) -> str:
        knee = flow.get("knee")
        if not knee:
            return fmt(_get(flow, "knee_step", "rate"))
        prefix = ">= " if knee.get("capped") else ""
        return prefix + fmt(knee.get("rate"))

    mode = summary.get("mode", "knee")
    at = "at the knee" if mode == "knee" else "at the rate run"
    rows.append((f"rate {at} (/s)", knee_cell(floor), knee_cell(alert), ""))
    row(
        f"throughput {at} (completed/s)",
        f_step.get("throughput_per_s"),
        a_step.get("throughput_per_s"),
    )
    row(f"flows completed {at}", f_step.get("completed"), a_step.get("completed"), with_ratio=False)
    row(f"flows failed {at}", f_step.get("failed"), a_step.get("failed"), with_ratio=False)
    row(
        "steps run",
        len(floor.get("steps", [])) or None,
        len(alert.get("steps", [])) or None,
        with_ratio=False,
    )
    for label, f_key, a_key in LATENCY_PAIRS:
        for q in ("p50", "p95", "p99"):
            row(
                f"{label} {q} (ms)",
                _get(f_step, "latency", f_key, f"{q}_ms"),
                _get(a_step, "latency", a_key, f"{q}_ms"),
            )
    f_cpu = f_step.get("cpu_per_flow_s") or {}
    a_cpu = a_step.get("cpu_per_flow_s") or {}
    names = sorted((set(f_cpu) | set(a_cpu)) - {"all", "bench"})
    for name in names:
        row(f"CPU per flow, {name} (ms)", _ms(f_cpu.get(name)), _ms(a_cpu.get(name)))
    row("CPU per flow, all stack processes (ms)", _ms(f_cpu.get("all")), _ms(a_cpu.get("all")))
    row(
        "CPU per flow, the bench itself (ms, not in all)",
        _ms(f_cpu.get("bench")),
        _ms(a_cpu.get("bench")),
    )
    row(
        "stack cores busy over the step",
        f_step.get("stack_cores_busy"),
        a_step.get("stack_cores_busy"),
        with_ratio=False,
    )
    f_acc = floor.get("accounting") or {}
    a_acc = alert.get("accounting") or {}
    for answer in ("confirmed", "contested"):
        row(
            f"history events per flow ({answer} alert)",
            f_acc.get("events"),
            _get(a_acc, answer, "events"),
        )
    row(
        "billable actions per flow (confirmed alert)",
        f_acc.get("billable"),
        _get(a_acc, "confirmed", "billable"),
    )
    categories = list(
        dict.fromkeys(
            [*(f_acc.get("by_billable") or {}), *(_get(a_acc, "confirmed", "by_billable") or {})]
        )
    )
    for name in categories:
        row(
            f"  {name}",
            _get(f_acc, "by_billable", name),
            _get(a_acc, "confirmed", "by_billable", name),
            with_ratio=False,
        )
    conv = a_acc.get("conversations") or {}
    row("conversation billable actions per alert", None, conv.get("billable"), with_ratio=False)
    for name, value in (conv.get("by_billable") or {}).items():
        row(f"  {name}", None, value, with_ratio=False)
    row("conversation history events per alert", None, conv.get("events"), with_ratio=False)
    row(
        "billable actions, confirmed alert + its conversation share",
        f_acc.get("billable"),
        a_acc.get("billable_per_confirmed_alert"),
    )
    half = alert.get("half_knee")
    if half:
        rows.append((f"alert at half the knee ({fmt(half.get('rate'))}/s):", "", "", ""))
        for label, _f_key, a_key in LATENCY_PAIRS:
            if "recorded" in label:
                row(
                    f"  {label} p99 (ms)",
                    None,
                    _get(half, "latency", a_key, "p99_ms"),
                    with_ratio=False,
                )
        row(
            "  flows completed / failed",
            None,
            f"{half.get('completed')} / {half.get('failed')}",
            with_ratio=False,
        )
    return rows


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def render_table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    """A plain text table, first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for n, r in enumerate([header, *rows]):
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append(" | ".join(cells).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def target_rows(summary: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """Issue 12's targets as rows of the same table: (target, "", measured, met)."""
    rows = []
    for t in summary.get("targets", []):
        verdict = "n/a" if t["ok"] is None else ("met" if t["ok"] else "MISSED")
        rows.append(
            (f"target: {t['name']} {t['op']} {fmt(t['target'])}", "", fmt(t["value"]), verdict)
        )
    return rows


def print_report(summary: Mapping[str, Any]) -> None:
    """The table (the issue's targets in its last rows), then the summary as one JSON line."""
    rows = table_rows(summary) + target_rows(summary)
    print(render_table(rows, ("figure", "floor", "alert", "alert/floor")))
    print(json.dumps(summary, sort_keys=True), flush=True)


def _target(name: str, value: float | None, op: str, target: float) -> dict[str, Any]:
    ok = None if value is None else (value >= target if op == ">=" else value <= target)
    return {"name": name, "value": value, "op": op, "target": target, "ok": ok}


def ratios_and_targets(summary: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The alert's figures against the floor's, and issue 12's targets, from the summary."""
    f_step = _get(summary, "floor", "knee_step") or {}
    a_step = _get(summary, "alert", "knee_step") or {}
    half = _get(summary, "alert", "half_knee") or {}
    acc = _get(summary, "alert", "accounting") or {}
    ratios = {
        "throughput_alert_over_floor": ratio(
            a_step.get("throughput_per_s"), f_step.get("throughput_per_s")
        ),
        "knee_rate_alert_over_floor": ratio(
            _get(summary, "alert", "knee", "rate"), _get(summary, "floor", "knee", "rate")
        ),
        "cpu_per_flow_alert_over_floor": ratio(
            _get(a_step, "cpu_per_flow_s", "all"), _get(f_step, "cpu_per_flow_s", "all")
        ),
        "billable_alert_over_floor": ratio(
            acc.get("billable_per_confirmed_alert"),
            _get(summary, "floor", "accounting", "billable"),
        ),
    }
    opts = summary.get("options") or {}
    targets = [
        _target(
            "alert throughput at knee / floor throughput at knee",
            ratios["throughput_alert_over_floor"],
            ">=",
            0.6,
        ),
        _target(
            "half knee: POST->SMS p99 (ms)",
            _get(half, "latency", "post_to_sms_recorded", "p99_ms") if half else None,
            "<=",
            round(float(opts.get("half_sms_p99_s", 0.25)) * 1000, 1),
        ),
        _target(
            "half knee: reply->fraud p99 (ms)",
            _get(half, "latency", "reply_to_fraud_recorded", "p99_ms") if half else None,
            "<=",
            round(float(opts.get("half_fraud_p99_s", 0.30)) * 1000, 1),
        ),
        _target(
            "history events, confirmed alert",
            _get(acc, "confirmed", "events"),
            "<=",
            20,
        ),
        _target(
            "billable actions, confirmed alert + conversation share",
            acc.get("billable_per_confirmed_alert"),
            "<=",
            8,
        ),
        _target(
            "CPU per alert / floor CPU per flow (all stack processes)",
            ratios["cpu_per_flow_alert_over_floor"],
            "<=",
            1.7,
        ),
    ]
    return ratios, targets
