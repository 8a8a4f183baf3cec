"""OpenTelemetry setup shared by every process."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

import temporalio.activity
import temporalio.workflow
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

from fiflow.domain.redaction import safe_traceback
from fiflow.integrations.settings import Settings

_default_record_factory = logging.getLogRecordFactory()
_OTLP_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def _scrubbed_record(*args: object, **kwargs: object) -> logging.LogRecord:
    """A log record whose exception text, if any, has every message scrubbed."""
    record = _default_record_factory(*args, **kwargs)
    exc = record.exc_info[1] if record.exc_info else None
    if exc is not None:
        # Formatters reuse a record's exc_text; setting it here covers every handler,
        # including those uvicorn and Temporal's SDK install themselves.
        record.exc_text = safe_traceback(exc)
    return record


def scrub_exceptions_in_logs() -> None:
    """Make every logged traceback carry exception types and places, not their messages.

    Exception messages quote their inputs (a validation error its input value, a driver
    error its parameters); a logged traceback is read far more widely than the data.
    """
    logging.setLogRecordFactory(_scrubbed_record)


def exporting() -> bool:
    """Whether the standard OTEL_* variables ask for trace export (none set: no cost at all)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "none":
        return False
    return any(os.environ.get(v) for v in _OTLP_ENDPOINT_VARS)


def setup(service: str, settings: Settings) -> None:
    """Logging (text or JSON) and, when OTEL_* asks for it, OTLP trace export."""
    scrub_exceptions_in_logs()
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonLogFormatter())
        # The JSON entry carries the workflow and activity as fields: keep the message clean.
        temporalio.activity.logger.activity_info_on_message = False
        temporalio.workflow.logger.workflow_info_on_message = False
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    # httpx logs every request URL at INFO; some carry personal data in the query string
    # (a caller's phone number looked up in CRM). Its warnings and errors still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # OTEL_SERVICE_NAME (read by Resource.create) names the service; else the process's part.
    attributes = (
        {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": f"fiflow-{service}"}
    )
    provider = TracerProvider(resource=Resource.create(attributes))
    if settings.otel_console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    if exporting():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        # The exporter reads its endpoint, headers, timeout and TLS from OTEL_EXPORTER_OTLP_*.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        # Every back-office call becomes a child span of the activity that made it.
        HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    trace.set_tracer_provider(provider)


def instrument_api(app: Any) -> None:
    """Server spans for the HTTP API, when traces are exported (the trace starts there)."""
    if exporting():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace/span and workflow ids."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        # Temporal's activity and workflow loggers attach where the record came from.
        for key in ("temporal_activity", "temporal_workflow"):
            info = getattr(record, key, None)
            if isinstance(info, dict) and info.get("workflow_id"):
                entry["workflow_id"] = info["workflow_id"]
                entry["workflow_type"] = info.get("workflow_type")
                if info.get("activity_type"):
                    entry["activity_type"] = info["activity_type"]
        if record.exc_info:
            entry["exception"] = record.exc_text or safe_traceback(record.exc_info[1])  # type: ignore[arg-type]
        return json.dumps(entry, default=str)
