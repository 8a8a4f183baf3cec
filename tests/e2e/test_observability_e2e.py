"""Observability on `fiflow up`: with OTEL_EXPORTER_OTLP_ENDPOINT set, one trace runs from
`POST /v1/alerts` through the workflow and its activities to the SMS gateway call; logs are
JSON lines carrying trace, span and workflow ids; the API and each worker serve the SDK's
metrics for Prometheus."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.e2e.stack import SYSTEM_KEY, RunningStack, start_stack
from tests.e2e.test_alerts_e2e import alert_body
from tests.e2e.waiting import until
from tests.sandbox.servers import free_port

SERVICE = "bank-fiflow-e2e"


@dataclass
class Span:
    """What the test needs of one exported span."""

    trace_id: str
    name: str
    service: str
    attributes: dict[str, Any]


class Collector:
    """An OTLP/HTTP trace receiver on loopback (what an OpenTelemetry Collector would be)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                collector.add(request)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                service = next(
                    (
                        a.value.string_value
                        for a in resource_spans.resource.attributes
                        if a.key == "service.name"
                    ),
                    "",
                )
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        attributes = {
                            a.key: a.value.string_value or a.value.int_value
                            for a in span.attributes
                        }
                        self.spans.append(Span(span.trace_id.hex(), span.name, service, attributes))

    def trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def find(self, name: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.name == name]


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    c = Collector()
    try:
        yield c
    finally:
        c.server.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, collector: Collector) -> Iterator[RunningStack]:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_SERVICE_NAME": SERVICE,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "FIFLOW_LOG_FORMAT": "json",
        "FIFLOW_LOG_LEVEL": "INFO",
    }
    running = start_stack(
        tmp_path_factory.mktemp("observability") / "state",
        workers=1,
        extra_env=env,
        metrics_port=two_free_ports(),
    )
    try:
        yield running
    finally:
        running.stop_in_background()  # its exit code is checked at the session's end


def two_free_ports() -> int:
    """A port p such that p and p + 1 are free (the API's and worker-1's metrics)."""
    for _ in range(50):
        base = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
        return base
    raise RuntimeError("no two consecutive free ports")


def _is_gateway_call(span: Span) -> bool:
    """The SMS gateway's HTTP call (Twilio's Messages.json) made by the send activity."""
    url = str(span.attributes.get("url.full") or span.attributes.get("http.url") or "")
    return "Messages.json" in url


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_one_trace_from_the_api_through_the_workflow_to_the_sms_gateway(
    stack: RunningStack, collector: Collector
) -> None:
    customer = httpx.get(f"{stack.sandbox}/__sandbox/customers", timeout=5).json()[5]
    r = httpx.post(
        f"{stack.api}/v1/alerts", json=alert_body(customer), headers=SYSTEM_KEY, timeout=10
    )
    assert r.status_code == 202, r.text
    alert_id = r.json()["alert_id"]

    [started] = until(
        lambda: collector.find("StartWorkflow:FraudAlertWorkflow"),
        "the start span is exported",
        within=30,
    )

    def complete() -> list[Span] | None:
        spans = collector.trace(started.trace_id)
        sent = any(s.name == "RunActivity:send_sms" for s in spans)
        return spans if sent and any(_is_gateway_call(s) for s in spans) else None

    trace = until(
        complete,
        "the workflow's SMS send and its gateway call, in the same trace",
        within=30,
    )
    names = {s.name for s in trace}
    # The API's server span, the workflow, its activities and the gateway call: one trace.
    assert any(n.startswith("POST /v1/alerts") for n in names), sorted(names)
    assert "RunWorkflow:FraudAlertWorkflow" in names, sorted(names)
    assert "RunActivity:send_sms" in names, sorted(names)
    assert {s.service for s in trace} == {SERVICE}  # OTEL_SERVICE_NAME names every process
    # No personal data in span names or attributes: the phone number is nowhere.
    assert customer["phone"] not in json.dumps([s.__dict__ for s in trace], default=str)

    lines = until(
        lambda: [
            e
            for e in json_lines(stack.state_dir / "logs" / "worker-1.log")
            if e.get("message") == "sms sent: alert:alert"
            and e.get("workflow_id") == f"alert-{alert_id}"
        ],
        "the worker's JSON log line for the SMS",
        within=30,
    )
    entry = lines[0]
    assert entry["trace_id"] == started.trace_id
    assert len(entry["span_id"]) == 16 and entry["level"] == "INFO"
    assert entry["activity_type"] == "send_sms"


def test_the_api_and_each_worker_serve_sdk_metrics(stack: RunningStack) -> None:
    banner = stack.output()
    line = next(ln for ln in banner.splitlines() if "Prometheus /metrics" in ln)
    api_address = line.split("api ", 1)[1].split(",")[0].strip()
    worker_address = line.split("worker-1 ", 1)[1].strip()

    def scrape(address: str) -> str:
        return httpx.get(f"http://{address}/metrics", timeout=5).text

    # The worker has run workflow and activity tasks (the alert test above, or its own
    # polls at least); the API has made client calls.
    worker = until(
        lambda: m if "temporal_" in (m := scrape(worker_address)) else None,
        "worker metrics",
        within=30,
    )
    assert "temporal_workflow_task_execution_latency" in worker or "temporal_num_pollers" in worker
    api = until(
        lambda: m if "temporal_request" in (m := scrape(api_address)) else None,
        "api metrics",
        within=30,
    )
    assert 'namespace="default"' in api
