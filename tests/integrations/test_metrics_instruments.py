"""The business instruments on the SDK's metric meter: counters count, histograms observe."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio.runtime import MetricBuffer, Runtime, TelemetryConfig

from fiflow.domain.metrics import Metric, MetricEvent
from fiflow.integrations import metrics

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_each_fact_reaches_its_instrument_with_its_labels() -> None:
    buffer = MetricBuffer(1000)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    labels = {"type": "card_fraud_suspected", "channel": "sms"}
    metrics.count(
        runtime.metric_meter,
        [
            MetricEvent(
                key="a:o",
                metric=Metric.ALERT_OUTCOMES,
                labels={"type": "card_fraud_suspected", "outcome": "confirmed"},
                occurred_at=T0,
            ),
            MetricEvent(
                key="a:r",
                metric=Metric.ALERT_REPLY_SECONDS,
                labels=labels,
                occurred_at=T0,
                value=12.5,
            ),
        ],
    )
    updates = [
        (u.metric.name, u.value, {k: v for k, v in u.attributes.items() if k != "service_name"})
        for u in buffer.retrieve_updates()
    ]
    assert (
        "fiflow_alert_outcomes",
        1,
        {"type": "card_fraud_suspected", "outcome": "confirmed"},
    ) in updates
    assert ("fiflow_alert_reply_seconds", 12.5, labels) in updates
    assert set(metrics.INSTRUMENTS) == set(Metric)
