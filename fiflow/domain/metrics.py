"""Business metrics: the facts a finished flow records, and how periods fold them.

Every fact is one `MetricEvent` with a key derived from the business workflow ID and the
step, so recording it twice (a retried activity, a re-run local activity) stores it once.
Labels are fixed vocabularies (types, channels, outcomes, products): never an ID, a name or
a number, and `MetricEvent` refuses a label its metric does not declare.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator, model_validator

from fiflow.domain.alerts import AlertOutcome, AlertStatus
from fiflow.domain.credit_report import CreditReport
from fiflow.domain.follow_ups import FollowUpStatus
from fiflow.domain.interactions import InteractionStatus
from fiflow.domain.notices import NoticeResult
from fiflow.domain.results_reports import ResultsReport, alert_report, follow_up_report


class Metric(StrEnum):
    """Every business metric, with its labels in LABELS (README, "Business metrics")."""

    ALERTS_STARTED = "alerts_started"
    ALERT_OUTCOMES = "alert_outcomes"
    ALERT_REPLY_SECONDS = "alert_reply_seconds"
    ALERT_ACTIONS = "alert_actions"
    NOTICES_SENT = "notices_sent"
    CREDIT_APPLICATIONS = "credit_applications"
    CREDIT_DECISION_SECONDS = "credit_decision_seconds"
    CREDIT_REVIEWS = "credit_reviews"
    FOLLOW_UPS = "follow_ups"
    INTERACTIONS = "interactions"
    TRIGGERS_FIRED = "triggers_fired"


LABELS: dict[Metric, tuple[str, ...]] = {
    Metric.ALERTS_STARTED: ("type", "source", "channel"),
    Metric.ALERT_OUTCOMES: ("type", "outcome"),
    Metric.ALERT_REPLY_SECONDS: ("type", "channel"),
    Metric.ALERT_ACTIONS: ("type", "action", "status"),
    Metric.NOTICES_SENT: ("type", "source", "channel", "status"),
    Metric.CREDIT_APPLICATIONS: ("product", "decision"),
    Metric.CREDIT_DECISION_SECONDS: ("product", "decided_by"),
    Metric.CREDIT_REVIEWS: ("product", "sla"),
    Metric.FOLLOW_UPS: ("outcome", "reached"),
    Metric.INTERACTIONS: ("channel", "outcome"),
    Metric.TRIGGERS_FIRED: ("trigger",),
}

# Metrics whose events carry a value (seconds): their periods have a sum, p50 and p95.
VALUED = frozenset({Metric.ALERT_REPLY_SECONDS, Metric.CREDIT_DECISION_SECONDS})

# Label values are configuration words (an alert type, a rule's trigger id): lower-case
# tokens. Anything else becomes "other" rather than reaching a label.
_LABEL_VALUE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
OTHER = "other"

# How the alert outcomes read in the metrics (the words): "failed" is an alert no
# channel could deliver.
ALERT_OUTCOME_LABEL = {
    AlertOutcome.CONFIRM: "confirmed",
    AlertOutcome.CONTEST: "contested",
    AlertOutcome.NO_REPLY: "no_reply",
    AlertOutcome.NO_CHANNEL: "failed",
}
# Interaction outcomes a channel may state freely: only these words reach a label.
INTERACTION_OUTCOMES = frozenset({"resolved", "unresolved", "abandoned"})


def label_value(value: object) -> str:
    """A label value, or "other" when it is not a plain configuration word."""
    text = str(value) if value is not None else "none"
    return text if _LABEL_VALUE.match(text) else OTHER


class MetricEvent(BaseModel):
    """One business fact: counted once per key, at the time it happened."""

    key: str = Field(min_length=1, max_length=200)
    metric: Metric
    labels: dict[str, str] = Field(default_factory=dict)
    occurred_at: datetime
    value: float | None = None
    # The results report of the flow this fact belongs to, on one fact per flow: it rides
    # with the facts so the activity that records them stores it too, once per workflow ID
    # (domain/results_reports.py). Never part of the metric tables or a label.
    report: ResultsReport | None = None

    @field_validator("labels")
    @classmethod
    def _plain_values(cls, labels: dict[str, str]) -> dict[str, str]:
        return {k: label_value(v) for k, v in labels.items()}

    @model_validator(mode="after")
    def _declared_labels(self) -> MetricEvent:
        if set(self.labels) != set(LABELS[self.metric]):
            raise ValueError(f"{self.metric.value} takes labels {LABELS[self.metric]}")
        return self

    def labels_key(self) -> str:
        """The labels as stored and grouped: canonical JSON."""
        return labels_key(self.labels)


def labels_key(labels: dict[str, str]) -> str:
    """Canonical JSON of a label set (sorted keys, no spaces)."""
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


class RecordMetricEvents(BaseModel):
    """The facts a flow records at its end (activity `record_metric_events`)."""

    events: list[MetricEvent]


# --- the facts of each flow ---------------------------------------------------------------


def _action_name(action: str) -> str:
    """`block_card:pre_block` -> `block_card`; `answer_late_reply:<id>` -> `answer_late_reply`."""
    return action.split(":", 1)[0]


def alert_events(workflow_id: str, status: AlertStatus, source: str) -> list[MetricEvent]:
    """A finished fraud alert's facts: started (with the alert's results report), outcome,
    reply time, actions done or failed."""
    t = status.timings
    kind = status.alert_type
    channel = status.channel.value if status.channel else "none"
    received = t["received"]
    decided = t.get("decided", received)
    events = [
        MetricEvent(
            key=f"{workflow_id}:alerts_started",
            metric=Metric.ALERTS_STARTED,
            labels={"type": kind, "source": source, "channel": channel},
            occurred_at=received,
            report=alert_report(workflow_id, status, source)
            if status.outcome is not None
            else None,
        )
    ]
    if status.outcome is not None:
        events.append(
            MetricEvent(
                key=f"{workflow_id}:alert_outcomes",
                metric=Metric.ALERT_OUTCOMES,
                labels={"type": kind, "outcome": ALERT_OUTCOME_LABEL[status.outcome]},
                occurred_at=decided,
            )
        )
    replied, sent = t.get("replied"), t.get("sent")
    if status.reply is not None and replied is not None:
        events.append(
            MetricEvent(
                key=f"{workflow_id}:alert_reply_seconds",
                metric=Metric.ALERT_REPLY_SECONDS,
                labels={"type": kind, "channel": status.reply.channel.value},
                occurred_at=replied,
                value=max(0.0, (replied - (sent or received)).total_seconds()),
            )
        )
    for number, action in enumerate(status.actions):
        if action.outcome not in ("done", "failed"):
            continue
        events.append(
            MetricEvent(
                key=f"{workflow_id}:alert_actions:{number}",
                metric=Metric.ALERT_ACTIONS,
                labels={
                    "type": kind,
                    "action": _action_name(action.step),
                    "status": action.outcome,
                },
                occurred_at=action.at,
            )
        )
    return events


def notice_events(workflow_id: str, result: NoticeResult, source: str) -> list[MetricEvent]:
    """A finished informational notice: one fact with its type, source, channel and status."""
    at = result.timings.get("completed") or result.timings["received"]
    return [
        MetricEvent(
            key=f"{workflow_id}:notices_sent",
            metric=Metric.NOTICES_SENT,
            labels={
                "type": result.alert_type,
                "source": source,
                "channel": result.channel.value if result.channel else "none",
                "status": result.status.value,
            },
            occurred_at=at,
        )
    ]


def _credit_decided_at(report: CreditReport) -> datetime:
    """When the decision was taken: a reviewer's last review, the rules, or (a review
    deadline that decided) the completion."""
    if report.decided_by and report.decided_by.startswith("reviewer:") and report.reviews:
        return report.reviews[-1].at
    rules = report.rules_decision
    if rules is not None and rules.outcome.value != "refer":
        return rules.decided_at
    return report.completed_at


def credit_events(report: CreditReport) -> list[MetricEvent]:
    """A finished credit application: its decision, time to decision and review SLA."""
    key = f"credit-{report.application_id}"
    product = report.product
    decided_at = _credit_decided_at(report)
    by = report.decided_by or "none"
    decided_by = "reviewer" if by.startswith("reviewer:") else by
    events = [
        MetricEvent(
            key=f"{key}:credit_applications",
            metric=Metric.CREDIT_APPLICATIONS,
            labels={"product": product, "decision": report.decision.value},
            occurred_at=decided_at,
        ),
        MetricEvent(
            key=f"{key}:credit_decision_seconds",
            metric=Metric.CREDIT_DECISION_SECONDS,
            labels={"product": product, "decided_by": decided_by},
            occurred_at=decided_at,
            value=max(0.0, (decided_at - report.submitted_at).total_seconds()),
        ),
    ]
    referred = report.rules_decision is not None and report.rules_decision.outcome.value == "refer"
    if referred:
        # Past its SLA: the review deadline came (escalated, or the rules decided instead).
        late = any(p in ("review escalated", "review deadline passed") for p in report.path)
        events.append(
            MetricEvent(
                key=f"{key}:credit_reviews",
                metric=Metric.CREDIT_REVIEWS,
                labels={"product": product, "sla": "past" if late else "within"},
                occurred_at=decided_at,
            )
        )
    return events


def follow_up_events(workflow_id: str, status: FollowUpStatus) -> list[MetricEvent]:
    """A finished follow-up: how it ended, whether a contact reached the customer, and its
    results report."""
    if status.outcome is None:
        return []
    reached = any(a.outcome == "sent" for a in status.attempts)
    return [
        MetricEvent(
            key=f"{workflow_id}:follow_ups",
            metric=Metric.FOLLOW_UPS,
            labels={"outcome": status.outcome.value, "reached": "yes" if reached else "no"},
            occurred_at=status.ended_at or status.follow_up_at,
            report=follow_up_report(workflow_id, status),
        )
    ]


def interaction_events(workflow_id: str, status: InteractionStatus) -> list[MetricEvent]:
    """A closed interaction and each trigger it fired."""
    at = status.ended_at or status.started_at
    assert at is not None
    outcome = status.outcome if status.outcome in INTERACTION_OUTCOMES else "stated"
    events = [
        MetricEvent(
            key=f"{workflow_id}:interactions",
            metric=Metric.INTERACTIONS,
            labels={"channel": status.channel.value, "outcome": outcome},
            occurred_at=at,
        )
    ]
    for number, fired in enumerate(status.fired):
        events.append(
            MetricEvent(
                key=f"{workflow_id}:triggers_fired:{number}",
                metric=Metric.TRIGGERS_FIRED,
                labels={"trigger": fired.trigger_id},
                occurred_at=fired.at,
            )
        )
    return events


# --- periods ------------------------------------------------------------------------------


class PeriodKind(StrEnum):
    """The fixed periods the aggregation folds events into."""

    HOUR = "hour"
    DAY = "day"


PERIOD_LENGTH = {PeriodKind.HOUR: timedelta(hours=1), PeriodKind.DAY: timedelta(days=1)}


def utc(at: datetime) -> datetime:
    """An instant in UTC (a naive one, as SQLite returns them, is taken as UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def period_start(kind: PeriodKind, at: datetime) -> datetime:
    """The start (UTC) of the period of this kind that holds `at`."""
    at = utc(at)
    if kind is PeriodKind.HOUR:
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank percentile of sorted values (q in (0, 1])."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class PeriodFigure:
    """One metric and label set over one period."""

    kind: PeriodKind
    start: datetime
    metric: str
    labels: str  # canonical JSON
    count: int
    sum: float | None
    p50: float | None
    p95: float | None


def fold(
    kind: PeriodKind, events: Iterable[tuple[datetime, str, str, float | None]]
) -> list[PeriodFigure]:
    """Fold (occurred_at, metric, labels, value) rows into per-period figures."""
    groups: dict[tuple[datetime, str, str], list[float | None]] = defaultdict(list)
    for occurred_at, metric, labels, value in events:
        groups[(period_start(kind, occurred_at), metric, labels)].append(value)
    figures = []
    for (start, metric, labels), values in sorted(groups.items()):
        valued = sorted(v for v in values if v is not None)
        figures.append(
            PeriodFigure(
                kind=kind,
                start=start,
                metric=metric,
                labels=labels,
                count=len(values),
                sum=math.fsum(valued) if valued else None,
                p50=percentile(valued, 0.5) if valued else None,
                p95=percentile(valued, 0.95) if valued else None,
            )
        )
    return figures


class AggregateMetrics(BaseModel):
    """One pass of the metrics aggregation (the schedule's action carries it)."""

    kinds: list[PeriodKind] = Field(
        default_factory=lambda: [PeriodKind.HOUR, PeriodKind.DAY], min_length=1
    )
    # Recompute every period that has events, not only those with events not yet folded.
    full: bool = False


class AggregationResult(BaseModel):
    """What a pass folded."""

    events: int
    periods: int
