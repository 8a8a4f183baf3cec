"""fiflow's business metric instruments, defined once, on the Temporal SDK's metric meter.

A process with `FIFLOW_METRICS_ADDRESS` set exports them on its Prometheus endpoint with
the SDK's own metrics (fiflow/integrations/temporal.py builds that runtime). The recording
activity counts a fact here only when the metrics store took it as new, so a retried
activity never counts twice, and activities do not run again on replay.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.common import MetricMeter

from fiflow.domain.metrics import VALUED, Metric, MetricEvent


@dataclass(frozen=True)
class Instrument:
    """A Prometheus instrument for one business metric."""

    name: str
    description: str
    unit: str | None = None


# Counters count events; the two *_seconds are histograms of the event's value.
INSTRUMENTS: dict[Metric, Instrument] = {
    Metric.ALERTS_STARTED: Instrument(
        "fiflow_alerts_started", "Fraud alerts started, by type, source and channel"
    ),
    Metric.ALERT_OUTCOMES: Instrument(
        "fiflow_alert_outcomes", "Fraud alerts ended: confirmed, contested, no_reply, failed"
    ),
    Metric.ALERT_REPLY_SECONDS: Instrument(
        "fiflow_alert_reply_seconds", "Time from the alert going out to the reply", "s"
    ),
    Metric.ALERT_ACTIONS: Instrument(
        "fiflow_alert_actions", "Rule actions an alert took (done) or could not take (failed)"
    ),
    Metric.NOTICES_SENT: Instrument(
        "fiflow_notices_sent", "Informational notices ended, by type, source, channel, status"
    ),
    Metric.CREDIT_APPLICATIONS: Instrument(
        "fiflow_credit_applications", "Credit applications finished, by product and decision"
    ),
    Metric.CREDIT_DECISION_SECONDS: Instrument(
        "fiflow_credit_decision_seconds", "Time from submission to decision", "s"
    ),
    Metric.CREDIT_REVIEWS: Instrument(
        "fiflow_credit_reviews", "Referred applications, reviewed within or past the SLA"
    ),
    Metric.FOLLOW_UPS: Instrument(
        "fiflow_follow_ups", "Follow-ups ended: resolved, customer_in_touch, gave_up"
    ),
    Metric.INTERACTIONS: Instrument("fiflow_interactions", "Interactions closed"),
    Metric.TRIGGERS_FIRED: Instrument("fiflow_triggers_fired", "Interaction triggers fired"),
}


def count(meter: MetricMeter, events: list[MetricEvent]) -> None:
    """Add the events to their instruments (call once per newly stored event)."""
    for ev in events:
        spec = INSTRUMENTS[ev.metric]
        attributes: dict[str, str | int | float | bool] = dict(ev.labels)
        if ev.metric in VALUED:
            if ev.value is not None:
                meter.create_histogram_float(spec.name, spec.description, spec.unit).record(
                    ev.value, attributes
                )
        else:
            meter.create_counter(spec.name, spec.description, spec.unit).add(1, attributes)
