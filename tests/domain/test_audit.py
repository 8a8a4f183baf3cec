"""The three audit records share one shape, still read what older runs stored, and still
write the API v1 names beside the uniform ones (marked deprecated in the schema)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from fiflow.domain.alerts import ActionRecord, AlertStatus
from fiflow.domain.audit import AUDIT_OUTCOMES, AuditEntry
from fiflow.domain.credit import CallRecord, CreditCheckResult
from fiflow.domain.follow_ups import ContactAttempt, FollowUpStatus
from fiflow.domain.results_reports import FollowUpAttemptReport, ReportAction

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
AT = "2026-01-05T09:30:00Z"
UNIFORM = {"step", "outcome", "detail", "at", "system", "idempotency_key"}


def test_every_record_is_an_audit_entry_with_the_same_fields() -> None:
    for record in (ActionRecord, CallRecord, ContactAttempt, ReportAction, FollowUpAttemptReport):
        assert issubclass(record, AuditEntry)
        assert set(record.model_fields) == UNIFORM, record
    assert set(AUDIT_OUTCOMES) == {
        "done", "skipped", "failed", "merged", "compensated", "sent", "suppressed"
    }  # fmt: skip


# What results of completed runs and recorded histories hold: each record's fields as they
# were named before the shape was shared.
OLD_ACTION = {"action": "block_card:contest", "status": "done", "detail": "card 4242", "at": AT}
OLD_CALL = {
    "system": "bureau", "step": "soft_pull", "idempotency_key": "credit-a1:soft_pull",
    "outcome": "compensated", "detail": "score 712", "at": AT,
}  # fmt: skip
OLD_ATTEMPT = {"at": AT, "channel": "push", "outcome": "suppressed"}


def test_old_payloads_of_each_record_still_validate() -> None:
    action = ActionRecord.model_validate_json(json.dumps(OLD_ACTION))
    assert (action.step, action.outcome, action.detail, action.at) == (
        "block_card:contest", "done", "card 4242", T0
    )  # fmt: skip
    call = CallRecord.model_validate_json(json.dumps(OLD_CALL))
    assert (call.system, call.step, call.idempotency_key, call.outcome, call.detail) == (
        "bureau", "soft_pull", "credit-a1:soft_pull", "compensated", "score 712"
    )  # fmt: skip
    attempt = ContactAttempt.model_validate_json(json.dumps(OLD_ATTEMPT))
    assert (attempt.step, attempt.outcome, attempt.detail, attempt.system) == (
        "push", "suppressed", "", None
    )  # fmt: skip


def test_old_results_of_completed_runs_still_decode_through_the_data_converter() -> None:
    # The way a worker or the API reads a stored result: JSON payload -> pydantic model.
    alert = {
        "alert_id": "al-1", "alert_type": "card_fraud_suspected", "customer_id": "cust-1",
        "actions": [OLD_ACTION, {**OLD_ACTION, "action": "send_sms:alert", "status": "merged"}],
    }  # fmt: skip
    follow_up = {
        "follow_up_id": "fu-1", "customer_id": "cust-1", "ticket_id": "t-1",
        "reason": "card_delivery", "follow_up_at": AT,
        "attempts": [OLD_ATTEMPT, {"at": AT, "channel": "none", "outcome": "failed"}],
    }  # fmt: skip
    credit = {
        "status": "completed", "calls": [OLD_CALL], "started_at": AT, "completed_at": AT
    }  # fmt: skip
    decoded = _decode(alert, AlertStatus)
    assert isinstance(decoded, AlertStatus)
    assert [(a.step, a.outcome) for a in decoded.actions] == [
        ("block_card:contest", "done"), ("send_sms:alert", "merged")
    ]  # fmt: skip
    done = _decode(follow_up, FollowUpStatus)
    assert isinstance(done, FollowUpStatus)
    assert [(a.step, a.outcome) for a in done.attempts] == [
        ("push", "suppressed"), ("none", "failed")
    ]  # fmt: skip
    checked = _decode(credit, CreditCheckResult)
    assert isinstance(checked, CreditCheckResult)
    assert [(c.step, c.outcome) for c in checked.calls] == [("soft_pull", "compensated")]


def _decode(body: dict[str, Any], kind: type[BaseModel]) -> Any:
    converter = pydantic_data_converter.payload_converter
    [payload] = converter.to_payloads([body])
    [value] = converter.from_payloads([payload], [kind])
    return value


def test_an_action_writes_the_uniform_fields_and_the_v1_names() -> None:
    record = ActionRecord(
        step="send_sms:alert", outcome="done", at=T0, system="sms", idempotency_key="alert-1:k"
    )
    assert json.loads(record.model_dump_json()) == {
        "step": "send_sms:alert", "outcome": "done", "detail": "", "at": AT,
        "system": "sms", "idempotency_key": "alert-1:k",
        # API v1, deprecated: the same values under the old names.
        "action": "send_sms:alert", "status": "done",
    }  # fmt: skip
    # Read back (a query answered by one process, read by another): the uniform names win.
    assert ActionRecord.model_validate_json(record.model_dump_json()) == record
    # The console still reads the v1 names as attributes.
    assert (record.action, record.status) == ("send_sms:alert", "done")


def test_a_call_writes_the_uniform_fields() -> None:
    record = CallRecord.model_validate(OLD_CALL)
    assert json.loads(record.model_dump_json()) == OLD_CALL


def test_a_contact_attempt_writes_the_uniform_fields_and_the_v1_channel() -> None:
    record = ContactAttempt(step="sms", outcome="sent", at=T0, system="sms")
    assert json.loads(record.model_dump_json()) == {
        "step": "sms", "outcome": "sent", "detail": "", "at": AT,
        "system": "sms", "idempotency_key": None,
        "channel": "sms",  # API v1, deprecated
    }  # fmt: skip
    assert ContactAttempt.model_validate_json(record.model_dump_json()) == record
    assert record.channel == "sms"


def test_the_report_entries_read_old_reports_and_write_both_names() -> None:
    action = ReportAction.model_validate({"action": "block_card", "status": "failed", "at": AT})
    assert (action.step, action.outcome) == ("block_card", "failed")
    assert json.loads(action.model_dump_json())["action"] == "block_card"
    attempt = FollowUpAttemptReport.model_validate({"at": AT, "channel": "sms", "outcome": "sent"})
    assert (attempt.step, json.loads(attempt.model_dump_json())["channel"]) == ("sms", "sms")


def test_an_outcome_outside_the_documented_words_is_refused() -> None:
    with pytest.raises(ValidationError):
        ActionRecord.model_validate({**OLD_ACTION, "status": "maybe"})
    with pytest.raises(ValidationError):
        ContactAttempt(step="sms", outcome="delivered", at=T0)


def test_the_schema_marks_the_v1_names_deprecated_and_read_only() -> None:
    for record, old in ((ActionRecord, {"action", "status"}), (ContactAttempt, {"channel"})):
        props = record.model_json_schema(mode="serialization")["properties"]
        assert UNIFORM | old == set(props)
        for name in old:
            assert props[name]["deprecated"] is True and props[name]["readOnly"] is True
        assert not any(props[name].get("deprecated") for name in UNIFORM)
        assert props["outcome"]["enum"] == list(AUDIT_OUTCOMES)
        # Requests never carry them: the input schema has the uniform fields only.
        assert set(record.model_json_schema(mode="validation")["properties"]) == UNIFORM
