"""Dashboard figures from the metrics summary, and charts drawn as inline SVG (no JS library)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

# Panel title -> (metric, the label its bars are grouped by; None: one bar per period).
PANELS: list[tuple[str, str, str | None]] = [
    ("Alert funnel: started", "alerts_started", None),
    ("Alert funnel: outcomes", "alert_outcomes", "outcome"),
    ("Notices sent", "notices_sent", None),
    ("Alert actions", "alert_actions", None),
    ("Reply time (seconds, p50 per period)", "alert_reply_seconds", None),
    ("Outcomes per rule (triggers fired)", "triggers_fired", None),
    ("Credit applications per product and decision", "credit_applications", None),
    ("Credit decision time (seconds, p50 per period)", "credit_decision_seconds", None),
    ("Review SLA", "credit_reviews", "sla"),
    ("Follow-up outcomes", "follow_ups", "outcome"),
    ("Interactions", "interactions", None),
]
TIMED = {"alert_reply_seconds", "credit_decision_seconds"}


@dataclass
class Figure:
    """One metric and label set over the whole range."""

    metric: str
    labels: dict[str, str]
    count: int
    p50: float | None
    p95: float | None

    @property
    def label_text(self) -> str:
        """`k=v, k=v`, sorted: how the page and the test name a series."""
        return ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items())) or "(all)"


@dataclass
class Panel:
    """One chart and the figures behind it."""

    title: str
    metric: str
    figures: list[Figure] = field(default_factory=list)
    svg: Markup = Markup("")


def label_text(labels: dict[str, Any]) -> str:
    """The canonical text of a label set."""
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "(all)"


def bar_chart(bars: list[tuple[str, float]], *, unit: str = "") -> Markup:
    """A horizontal bar chart; every label and value is escaped text inside the SVG."""
    if not bars:
        return Markup('<p class="muted">No data in this range.</p>')
    width, row, label_w = 640, 22, 220
    top = max(v for _, v in bars) or 1.0
    height = row * len(bars) + 4
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value) in enumerate(bars):
        y = i * row + 2
        w = max(1.0, (width - label_w - 70) * value / top)
        shown = f"{value:g}{unit}"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}">'
            f"<title>{escape(label)}: {escape(shown)}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{escape(shown)}</text>'
        )
    parts.append("</svg>")
    # Every label and value above went through escape(); the rest is our own markup.
    return Markup("".join(parts))  # noqa: S704


def panels(summary: dict[str, Any]) -> list[Panel]:
    """The dashboard's panels from a `GET /v1/metrics/summary` body."""
    by_metric: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for series in summary.get("series", []):
        by_metric[series["metric"]].append(series)
    out: list[Panel] = []
    for title, metric, group in PANELS:
        panel = Panel(title, metric)
        per_period: dict[str, float] = defaultdict(float)
        grouped: dict[str, float] = defaultdict(float)
        for series in by_metric.get(metric, []):
            points = series.get("points", [])
            count = sum(int(p["count"]) for p in points)
            last = points[-1] if points else {}
            panel.figures.append(
                Figure(
                    metric, dict(series.get("labels", {})), count, last.get("p50"), last.get("p95")
                )
            )
            for p in points:
                value = p.get("p50") if metric in TIMED else p["count"]
                if value is not None:
                    if metric in TIMED:
                        per_period[p["start"]] = max(per_period[p["start"]], float(value))
                    else:
                        per_period[p["start"]] += float(value)
            key = (
                str(series.get("labels", {}).get(group, "none"))
                if group
                else label_text(series.get("labels", {}))
            )
            grouped[key] += count
        if metric in TIMED or group is None and len(grouped) <= 1:
            bars = [(start[:16].replace("T", " "), v) for start, v in sorted(per_period.items())]
            panel.svg = bar_chart(bars, unit="s" if metric in TIMED else "")
        else:
            panel.svg = bar_chart(sorted(grouped.items()))
        out.append(panel)
    known = {m for _, m, _ in PANELS}
    for metric in sorted(set(by_metric) - known):
        panel = Panel(metric, metric)
        for series in by_metric[metric]:
            points = series.get("points", [])
            panel.figures.append(
                Figure(
                    metric,
                    dict(series.get("labels", {})),
                    sum(int(p["count"]) for p in points),
                    None,
                    None,
                )
            )
        panel.svg = bar_chart([(f.label_text, float(f.count)) for f in panel.figures])
        out.append(panel)
    return out
