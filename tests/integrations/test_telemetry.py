"""Telemetry switches: export only when OTEL_* asks for it; JSON log lines."""

from __future__ import annotations

import json
import logging

import pytest

from fiflow.integrations.telemetry import JsonLogFormatter, exporting


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_traces_are_exported_only_when_asked(
    env: dict[str, str], expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert exporting() is expected


def test_a_json_log_line_carries_the_workflow_it_came_from() -> None:
    record = logging.LogRecord(
        "temporalio.activity", logging.INFO, __file__, 1, "sent %s", ("x",), None
    )
    record.temporal_activity = {  # what Temporal's activity logger attaches
        "workflow_id": "alert-al-1",
        "workflow_type": "FraudAlertWorkflow",
        "activity_type": "send_sms",
    }
    entry = json.loads(JsonLogFormatter().format(record))
    assert entry["message"] == "sent x" and entry["level"] == "INFO"
    assert entry["workflow_id"] == "alert-al-1" and entry["activity_type"] == "send_sms"
    assert "trace_id" not in entry  # no span was current
