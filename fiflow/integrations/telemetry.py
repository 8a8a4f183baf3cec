"""OpenTelemetry setup shared by every process."""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from fiflow.domain.redaction import safe_traceback
from fiflow.integrations.settings import Settings

_default_record_factory = logging.getLogRecordFactory()


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


def setup(service: str, settings: Settings) -> None:
    """Install a tracer provider and plain logging; spans print only when asked to."""
    scrub_exceptions_in_logs()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request URL at INFO; some carry personal data in the query string
    # (a caller's phone number looked up in CRM). Its warnings and errors still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    provider = TracerProvider(resource=Resource.create({"service.name": f"fiflow-{service}"}))
    if settings.otel_console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
