"""Alert rule files (validation, rendering, re-reading) and the business keys derived from them."""

from __future__ import annotations

import copy
import os
import re
from datetime import timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from fiflow.domain.alerts import SAFE_ID
from fiflow.domain.credit_rules import parse_credit_rule_set
from fiflow.domain.keys import (
    address_hash,
    alert_id_for,
    alert_workflow_id,
    conversation_workflow_id,
    idempotency_key,
    pick_reply_code,
    reply_code_candidates,
)
from fiflow.domain.rules import (
    ActionType,
    AlertRuleSet,
    FraudOutcome,
    Priority,
    RuleSetError,
    parse_alert_rule_set,
    render,
    template_fields,
)
from fiflow.domain.triggers import parse_trigger_rule_set
from fiflow.integrations.rules_store import RuleStore, parse_alert_rules_text

SHIPPED = Path(str(resources.files("fiflow") / "rules" / "alerts.yaml"))
CREDIT_SHIPPED = Path(str(resources.files("fiflow") / "rules" / "credit.yaml"))
TRIGGERS_SHIPPED = Path(str(resources.files("fiflow") / "rules" / "triggers.yaml"))


@pytest.fixture
def shipped_data() -> dict[str, Any]:
    """The packaged rule file as plain data, to be broken one way per test."""
    return copy.deepcopy(yaml.safe_load(SHIPPED.read_text(encoding="utf-8")))


def invalid(data: Any) -> str:
    """The RuleSetError message for data that must be refused."""
    with pytest.raises(RuleSetError) as info:
        parse_alert_rules_text(yaml.safe_dump(data), source="test-rules.yaml")
    assert "test-rules.yaml" in str(info.value)
    return str(info.value)


# --- the shipped file -------------------------------------------------------------------


def test_shipped_file_validates() -> None:
    rules = parse_alert_rules_text(SHIPPED.read_text(encoding="utf-8"), source=str(SHIPPED))
    assert isinstance(rules, AlertRuleSet)
    assert rules.version
    assert rules.fi_name == "Fiflow Bank"
    for name in ("alert_sms", "alert_push_title", "alert_push_body"):
        assert name in rules.templates


def test_shipped_card_fraud_policy() -> None:
    rules = RuleStore(None).alert_rules()
    policy = rules.policy("card_fraud_suspected")
    assert policy is not None
    assert policy.pre_block_min_amount == Decimal(5000)

    confirm = [a.type for a in policy.on_confirm]
    assert ActionType.RECORD_FRAUD_OUTCOME in confirm
    assert ActionType.BLOCK_CARD not in confirm
    genuine = [a for a in policy.on_confirm if a.type is ActionType.RECORD_FRAUD_OUTCOME]
    assert genuine[0].outcome is FraudOutcome.GENUINE
    unblock = [a for a in policy.on_confirm if a.type is ActionType.UNBLOCK_CARD]
    assert unblock and unblock[0].only_if_pre_blocked

    contest = {a.type: a for a in policy.on_contest}
    assert contest[ActionType.RECORD_FRAUD_OUTCOME].outcome is FraudOutcome.FRAUD
    assert ActionType.BLOCK_CARD in contest
    assert contest[ActionType.SCHEDULE_CALLBACK].priority is Priority.HIGH

    assert policy.reply_window() == timedelta(minutes=15)
    assert [a.type for a in policy.escalation[0].actions] == [ActionType.RESEND]
    last = policy.escalation[-1].actions
    assert any(
        a.type is ActionType.RECORD_FRAUD_OUTCOME and a.outcome is FraudOutcome.NO_RESPONSE
        for a in last
    )
    assert any(a.type is ActionType.SCHEDULE_CALLBACK for a in policy.on_no_channel)


def test_shipped_templates_are_referenced_and_defined() -> None:
    rules = RuleStore(None).alert_rules()
    for policy in rules.alert_types.values():
        for action in policy.all_actions():
            if action.type is ActionType.NOTIFY_CUSTOMER:
                assert action.template in rules.templates


def test_unknown_alert_type_has_no_policy() -> None:
    assert RuleStore(None).alert_rules().policy("no_such_type") is None


def test_rule_set_is_immutable() -> None:
    rules = RuleStore(None).alert_rules()
    with pytest.raises(ValueError, match="frozen"):
        rules.version = "tampered"  # type: ignore[misc]


# --- invalid files ----------------------------------------------------------------------


def test_missing_version(shipped_data: dict[str, Any]) -> None:
    del shipped_data["version"]
    message = invalid(shipped_data)
    assert "version" in message
    assert "required" in message.lower()


def test_unknown_action_type(shipped_data: dict[str, Any]) -> None:
    policy = shipped_data["alert_types"]["card_fraud_suspected"]
    policy["on_confirm"][1] = {"type": "teleport_card"}
    message = invalid(shipped_data)
    assert "alert_types.card_fraud_suspected.on_confirm.1.type" in message
    assert "block_card" in message  # what would have been allowed


def test_template_referenced_but_not_defined(shipped_data: dict[str, Any]) -> None:
    policy = shipped_data["alert_types"]["card_fraud_suspected"]
    policy["on_contest"][-1] = {"type": "notify_customer", "template": "apology"}
    message = invalid(shipped_data)
    assert "'apology'" in message
    assert "card_fraud_suspected" in message
    assert "not defined" in message


def test_required_template_missing(shipped_data: dict[str, Any]) -> None:
    del shipped_data["templates"]["alert_sms"]
    assert "'alert_sms'" in invalid(shipped_data)


def test_template_with_unknown_field(shipped_data: dict[str, Any]) -> None:
    shipped_data["templates"]["confirmed"] = "Thanks {first_name}, {merchant} is marked genuine."
    message = invalid(shipped_data)
    assert "'confirmed'" in message
    assert "first_name" in message


def test_template_with_attribute_access_is_refused(shipped_data: dict[str, Any]) -> None:
    shipped_data["templates"]["confirmed"] = "{merchant.__class__}"
    assert "merchant.__class__" in invalid(shipped_data)


def test_malformed_template(shipped_data: dict[str, Any]) -> None:
    shipped_data["templates"]["confirmed"] = "Thanks, {merchant"
    assert "malformed" in invalid(shipped_data)


@pytest.mark.parametrize("wait", ["PT0S", 0, "-PT15M", -60])
def test_zero_or_negative_wait(shipped_data: dict[str, Any], wait: object) -> None:
    shipped_data["alert_types"]["card_fraud_suspected"]["escalation"][0]["wait"] = wait
    message = invalid(shipped_data)
    assert "alert_types.card_fraud_suspected.escalation.0" in message
    assert "wait must be more than 0" in message


def test_wait_longer_than_the_maximum(shipped_data: dict[str, Any]) -> None:
    shipped_data["alert_types"]["card_fraud_suspected"]["escalation"][1]["wait"] = "P31D"
    message = invalid(shipped_data)
    assert "escalation.1" in message
    assert "30 days" in message


def test_empty_escalation(shipped_data: dict[str, Any]) -> None:
    shipped_data["alert_types"]["card_not_present_suspected"]["escalation"] = []
    message = invalid(shipped_data)
    assert "alert_types.card_not_present_suspected.escalation" in message
    assert "at least 1" in message


def test_last_escalation_step_cannot_resend(shipped_data: dict[str, Any]) -> None:
    steps = shipped_data["alert_types"]["card_fraud_suspected"]["escalation"]
    steps[-1]["actions"].append({"type": "resend", "channel": "other"})
    assert "cannot resend" in invalid(shipped_data)


def test_action_missing_its_required_field(shipped_data: dict[str, Any]) -> None:
    shipped_data["alert_types"]["card_fraud_suspected"]["on_contest"][0] = {
        "type": "record_fraud_outcome"
    }
    message = invalid(shipped_data)
    assert "on_contest.0" in message
    assert "record_fraud_outcome needs outcome" in message


def test_unknown_alert_type_field(shipped_data: dict[str, Any]) -> None:
    shipped_data["alert_types"]["card_fraud_suspected"]["auto_approve"] = True
    message = invalid(shipped_data)
    assert "alert_types.card_fraud_suspected.auto_approve" in message
    assert "not permitted" in message


def test_unknown_top_level_field(shipped_data: dict[str, Any]) -> None:
    shipped_data["owner"] = "ops"
    assert "owner" in invalid(shipped_data)


def test_no_alert_types(shipped_data: dict[str, Any]) -> None:
    shipped_data["alert_types"] = {}
    assert "alert_types" in invalid(shipped_data)


def test_yaml_syntax_error() -> None:
    text = SHIPPED.read_text(encoding="utf-8").replace("fi_name: Fiflow Bank", "fi_name: [Fiflow")
    with pytest.raises(RuleSetError, match=r"broken\.yaml is not valid YAML/JSON"):
        parse_alert_rules_text(text, source="broken.yaml")


@pytest.mark.parametrize("text", ["", "just a string", "- a\n- list\n"])
def test_not_a_mapping(text: str) -> None:
    with pytest.raises(RuleSetError, match=r"odd\.yaml is invalid: \(top level\)"):
        parse_alert_rules_text(text, source="odd.yaml")


def test_json_is_accepted(shipped_data: dict[str, Any]) -> None:
    import json

    rules = parse_alert_rules_text(json.dumps(shipped_data), source="alerts.json")
    assert rules.version == shipped_data["version"]


def test_parse_alert_rule_set_error_names_the_source(shipped_data: dict[str, Any]) -> None:
    del shipped_data["fi_name"]
    with pytest.raises(RuleSetError, match=r"^custom source is invalid: fi_name"):
        parse_alert_rule_set(shipped_data, source="custom source")


def test_rule_set_error_is_a_value_error() -> None:
    assert issubclass(RuleSetError, ValueError)


# --- templates --------------------------------------------------------------------------


def test_render_fills_the_shipped_sms_template() -> None:
    rules = RuleStore(None).alert_rules()
    text = render(
        rules.templates["alert_sms"],
        {
            "fi_name": rules.fi_name,
            "merchant": "ACME Inc",
            "amount": "$912.00",
            "card_last4": "4242",
            "code": "4821",
        },
    )
    assert text.startswith("Fiflow Bank: ACME Inc $912.00 on card ending 4242.")
    assert "YES 4821" in text
    assert "NO 4821" in text
    assert "{" not in text


def test_render_does_not_reinterpret_values() -> None:
    assert render("{merchant} {amount}", {"merchant": "{code}", "amount": "$1"}) == "{code} $1"


def test_template_fields() -> None:
    assert template_fields("{fi_name}: {merchant} {amount}") == {
        "fi_name",
        "merchant",
        "amount",
    }
    assert template_fields("no fields, {{escaped}}") == set()


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{amount:>10}", "format spec {amount:>10}"),
        ("{merchant:.3}", "format spec {merchant:.3}"),
        ("{merchant!r}", "conversion {merchant!r}"),
        ("{merchant!s}", "conversion {merchant!s}"),
        ("{merchant.upper}", "attribute or index access {merchant.upper}"),
        ("{merchant[0]}", "attribute or index access {merchant[0]}"),
        ("{}", "positional field {}"),
        ("{0}", "positional field {0}"),
        ("{mer-chant}", "invalid field name {mer-chant}"),
        ("{amount:{merchant}}", "format spec"),
    ],
)
def test_template_fields_refuses_anything_but_plain_names(template: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        template_fields(f"Hi {template}", name="alert_sms")
    assert "'alert_sms'" in str(info.value)
    assert problem in str(info.value)


@pytest.mark.parametrize(
    "template", ["{amount:>10}", "{merchant!r}", "{merchant.__class__}", "{merchant[0]}", "{}"]
)
def test_alert_rule_file_with_a_non_plain_field_is_refused(
    shipped_data: dict[str, Any], template: str
) -> None:
    shipped_data["templates"]["confirmed"] = f"Thanks, {template} is marked genuine."
    message = invalid(shipped_data)
    assert "'confirmed'" in message
    assert "only plain {name} fields" in message


def test_credit_rule_file_with_a_format_spec_is_refused() -> None:
    data = yaml.safe_load(CREDIT_SHIPPED.read_text(encoding="utf-8"))
    data["templates"]["approved"] = "{fi_name}: approved for {amount:>12}."
    with pytest.raises(RuleSetError) as info:
        parse_credit_rule_set(data, source="credit.yaml")
    assert "'approved'" in str(info.value)
    assert "format spec {amount:>12}" in str(info.value)


def test_trigger_rule_file_with_attribute_access_is_refused() -> None:
    data = yaml.safe_load(TRIGGERS_SHIPPED.read_text(encoding="utf-8"))
    data["follow_up"]["templates"]["follow_up_sms"] = "{subject.__class__.__mro__}"
    with pytest.raises(RuleSetError) as info:
        parse_trigger_rule_set(data, source="triggers.yaml")
    assert "'follow_up_sms'" in str(info.value)
    assert "attribute or index access" in str(info.value)


def test_shipped_credit_and_trigger_files_validate() -> None:
    credit = parse_credit_rule_set(yaml.safe_load(CREDIT_SHIPPED.read_text(encoding="utf-8")))
    triggers = parse_trigger_rule_set(yaml.safe_load(TRIGGERS_SHIPPED.read_text(encoding="utf-8")))
    assert credit.sms_max_segments == 3
    assert triggers.follow_up.sms_max_segments == 3


@pytest.mark.parametrize(
    "template", ["{merchant.__class__}", "{merchant[0]}", "{amount:>10}", "{code!r}", "{0}"]
)
def test_render_never_reaches_into_values(template: str) -> None:
    with pytest.raises(ValueError):
        render(template, {"merchant": "ACME", "amount": "$1", "code": "1234", "0": "x"})


def test_render_keeps_escaped_braces() -> None:
    assert render("{{code}} {code}", {"code": "1234"}) == "{code} 1234"


def test_sms_max_segments_defaults_to_three_and_is_bounded(shipped_data: dict[str, Any]) -> None:
    assert RuleStore(None).alert_rules().sms_max_segments == 3
    shipped_data["sms_max_segments"] = 0
    assert "sms_max_segments" in invalid(shipped_data)


def test_template_too_long_for_the_segment_limit_is_refused(
    shipped_data: dict[str, Any],
) -> None:
    shipped_data["sms_max_segments"] = 1
    shipped_data["templates"]["no_response"] = "{fi_name}: " + "x" * 160
    message = invalid(shipped_data)
    assert "'no_response'" in message
    assert "sms_max_segments" in message


# --- RuleStore --------------------------------------------------------------------------


def write_rules(rules_dir: Path, version: str, mtime_ns: int) -> Path:
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    data["version"] = version
    path = rules_dir / "alerts.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def test_store_without_dir_reads_the_packaged_file() -> None:
    shipped = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    assert RuleStore(None).alert_rules().version == shipped["version"]


def test_store_rereads_a_changed_file(tmp_path: Path) -> None:
    write_rules(tmp_path, "v1", mtime_ns=1_700_000_000_000_000_000)
    store = RuleStore(tmp_path)
    first = store.alert_rules()
    assert first.version == "v1"

    write_rules(tmp_path, "v2", mtime_ns=1_700_000_060_000_000_000)
    second = store.alert_rules()
    assert second.version == "v2"
    # Whoever already holds the old rule set keeps it: the change affects the next read only.
    assert first.version == "v1"


def test_store_caches_while_the_file_is_unchanged(tmp_path: Path) -> None:
    stamp = 1_700_000_000_000_000_000
    write_rules(tmp_path, "v1", mtime_ns=stamp)
    store = RuleStore(tmp_path)
    first = store.alert_rules()
    assert store.alert_rules() is first
    # Same mtime: the store does not look at the content again.
    write_rules(tmp_path, "v2", mtime_ns=stamp)
    assert store.alert_rules().version == "v1"


def test_store_reports_a_broken_file_and_recovers(tmp_path: Path) -> None:
    path = write_rules(tmp_path, "v1", mtime_ns=1_700_000_000_000_000_000)
    store = RuleStore(tmp_path)
    assert store.alert_rules().version == "v1"

    path.write_text("version: [oops\n", encoding="utf-8")
    os.utime(path, ns=(1_700_000_060_000_000_000,) * 2)
    with pytest.raises(RuleSetError, match="not valid YAML"):
        store.alert_rules()

    write_rules(tmp_path, "v3", mtime_ns=1_700_000_120_000_000_000)
    assert store.alert_rules().version == "v3"


def test_store_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RuleSetError, match="cannot read rule file"):
        RuleStore(tmp_path / "nowhere").alert_rules()


# --- keys -------------------------------------------------------------------------------


def test_alert_id_is_stable_and_distinct() -> None:
    first = alert_id_for("secret", "evt-2026-0001")
    assert alert_id_for("secret", "evt-2026-0001") == first
    assert alert_id_for("secret", "evt-2026-0002") != first
    assert alert_id_for("other-key", "evt-2026-0001") != first
    assert re.fullmatch(SAFE_ID, first)


def test_alert_id_contains_no_input_text() -> None:
    event = "cust-4242424242424242-jane.doe"
    alert_id = alert_id_for("secret", event)
    for piece in (event, "4242", "jane", "doe", "cust"):
        assert piece not in alert_id
    assert re.fullmatch(r"al-[0-9a-f]{24}", alert_id)


def test_alert_workflow_id() -> None:
    assert alert_workflow_id("al-abc") == "alert-al-abc"


def test_reply_codes_are_four_digits() -> None:
    for alert_id in (f"al-{i:03d}" for i in range(50)):
        codes = reply_code_candidates(alert_id)
        assert codes
        assert len(codes) == len(set(codes))
        assert all(re.fullmatch(r"[1-9][0-9]{3}", c) for c in codes)


def test_reply_code_candidates_are_deterministic() -> None:
    assert reply_code_candidates("al-x") == reply_code_candidates("al-x")
    assert reply_code_candidates("al-x") != reply_code_candidates("al-y")


def test_pick_reply_code_prefers_the_first_candidate() -> None:
    assert pick_reply_code("al-x", set()) == reply_code_candidates("al-x")[0]


def test_pick_reply_code_avoids_codes_in_use() -> None:
    candidates = reply_code_candidates("al-x")
    in_use = set(candidates[:5])
    picked = pick_reply_code("al-x", in_use)
    assert picked not in in_use
    assert picked == candidates[5]


def test_pick_reply_code_avoids_other_alerts_codes() -> None:
    in_use: set[str] = set()
    for i in range(30):
        code = pick_reply_code(f"al-{i}", in_use)
        assert code not in in_use
        in_use.add(code)
    assert len(in_use) == 30


def test_conversation_workflow_id_contains_no_phone_digits() -> None:
    phone = "+12025550142"
    workflow_id = conversation_workflow_id("sms", address_hash("secret", phone))
    assert workflow_id.startswith("conv-sms-")
    assert phone not in workflow_id
    assert "2025550142" not in workflow_id
    assert "555014" not in workflow_id
    assert re.fullmatch(r"conv-sms-[0-9a-f]{32}", workflow_id)


def test_address_hash_is_stable_keyed_and_ignores_whitespace() -> None:
    digest = address_hash("secret", "+12025550142")
    assert address_hash("secret", " +12025550142\n") == digest
    assert address_hash("other-key", "+12025550142") != digest
    assert address_hash("secret", "+12025550143") != digest


def test_idempotency_key_uses_the_business_workflow_id() -> None:
    assert idempotency_key("alert-al-1", "block_card") == "alert-al-1:block_card"
    assert idempotency_key("alert-al-1", "block_card") != idempotency_key("alert-al-1", "unblock")
