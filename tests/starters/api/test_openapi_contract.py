"""The spec tells the truth: readable operation ids, the error body on every 4xx and 5xx an
operation can answer, the credentials. That the running API keeps it is checked live by
tests/e2e/test_api_contract_e2e.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fiflow.integrations.settings import Settings
from fiflow.starters.api.app import create_app

OPERATION_ID = re.compile(r"^[a-z]+(_[a-z]+)+$")
ERROR_REF = "#/components/schemas/ErrorBody"
# The webhook is signed by the SMS provider, not keyed; /healthz is open.
UNKEYED = {("post", "/v1/channels/sms/inbound"), ("get", "/healthz")}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = Path(tmp_path_factory.mktemp("openapi")) / "api.db"
    settings = Settings(database_url=f"sqlite:///{db}", payload_encryption=False)
    return create_app(settings).openapi()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    ]


def _error_ref(operation: dict[str, Any], status: str) -> str | None:
    response = operation["responses"].get(status)
    if response is None:
        return None
    return response["content"]["application/json"]["schema"].get("$ref")


def test_operation_ids_are_readable_and_unique(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert all(OPERATION_ID.match(i) for i in ids), ids
    assert len(ids) == len(set(ids))
    assert all(op.get("summary") for _, _, op in _operations(spec))


def test_every_error_status_answers_the_error_body(spec: dict[str, Any]) -> None:
    for method, path, operation in _operations(spec):
        for status in operation["responses"]:
            if int(status) >= 400:
                assert _error_ref(operation, status) == ERROR_REF, (method, path, status)


def test_each_operation_declares_what_it_can_answer(spec: dict[str, Any]) -> None:
    for method, path, operation in _operations(spec):
        declared = set(operation["responses"])
        where = (method, path)
        assert {"500"} <= declared, where
        if where != ("get", "/healthz"):
            assert {"503"} <= declared, where
        if where not in UNKEYED:
            assert {"401", "403", "429"} <= declared, where
            assert operation["security"], where
            assert "Retry-After" in operation["responses"]["429"]["headers"], where
        if operation.get("parameters") or "requestBody" in operation:
            assert "422" in declared, where
        if "application/json" in operation.get("requestBody", {}).get("content", {}):
            assert {"400", "413"} <= declared, where
        # An object named in the path may not exist, unless the call creates it.
        creates = operation["operationId"].endswith("_create")
        if any(p["in"] == "path" for p in operation.get("parameters", [])) and not creates:
            assert "404" in declared, where


def test_the_error_body_and_the_credentials_are_described(spec: dict[str, Any]) -> None:
    body = spec["components"]["schemas"]["ErrorBody"]
    assert body["required"] == ["code", "message"]
    assert set(body["properties"]) == {"code", "message", "details"}
    assert all(p.get("description") for p in body["properties"].values())
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "in": "header", "name": "X-API-Key"}
    assert schemes["CustomerSession"]["name"] == "X-Customer-Session"
    assert schemes["StaffBearer"]["scheme"] == "bearer"
    # A customer session never admits a caller on its own: it scopes a channel key.
    keyed = next(op for _, path, op in _operations(spec) if path == "/v1/alerts/{alert_id}")
    assert {"CustomerSession": []} not in keyed["security"]


def test_request_and_response_fields_are_described(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for name in (
        "AlertAccepted",
        "AlertView",
        "PushReply",
        "ReviewBody",
        "RuleSetInfo",
        "AlertPreferencesView",
    ):
        fields = schemas[name]["properties"]
        assert all(f.get("description") for f in fields.values()), name
