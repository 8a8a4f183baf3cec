"""The SMS country allowlist (alerts.yaml `sms_countries`): a number outside it is never texted."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml
from temporalio.testing import WorkflowEnvironment

from fiflow.activities.messaging import Delivery, MessagingActivities, SendSms
from fiflow.domain.alerts import AlertOutcome, ReplyOutcome
from fiflow.domain.customers import Channel
from fiflow.integrations.database import create_db_engine
from fiflow.integrations.optouts import OptOutStore
from fiflow.integrations.rules_store import RuleStore
from fiflow.starters.alerts_client import deliver_push_reply
from tests.workflows.harness import Harness, alert_request, poll, running_harness, sms_customer

SHIPPED_RULES = Path(__file__).parents[2] / "fiflow" / "rules"
LONDON = "+44 20 7946 0018"  # Ofcom's drama range: valid, and reaches no one


def _uk_customer(h: Harness) -> str:
    customer = h.add(
        sms_customer(phone=LONDON, push_device_id="dev-uk", preferred_channel=Channel.SMS)
    )
    return customer.customer_id


async def _alert_then_push_confirm(h: Harness, customer_id: str) -> list[str]:
    """Run an alert for the customer to its end; the action details it recorded."""
    customer = h.office.customers[customer_id]
    handle = await h.start(alert_request(customer))
    await poll(lambda: h.office.push, lambda p: len(p) >= 1)
    status = await h.wait_status(handle, lambda s: s.channel is Channel.PUSH)
    await deliver_push_reply(
        h.client, status.alert_id, ReplyOutcome.CONFIRM, "tap-1", status.timings["sent"]
    )
    result = await h.finish(handle)
    assert result.outcome is AlertOutcome.CONFIRM
    return [f"{a.step} {a.outcome} {a.detail}" for a in result.actions]


async def test_a_number_outside_the_allowed_countries_is_never_texted(h: Harness) -> None:
    actions = await _alert_then_push_confirm(h, _uk_customer(h))

    assert h.office.sms == []  # the stand-in SMS gateway never saw a message
    assert "send_sms:alert skipped country not allowed for SMS" in actions, actions
    assert any(a.startswith("send_push:alert done") for a in actions), actions


async def test_allowing_the_country_in_the_rules_lets_the_sms_through(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    data = yaml.safe_load((rules / "alerts.yaml").read_text())
    data["sms_countries"] = ["US", "CA", "GB"]
    (rules / "alerts.yaml").write_text(yaml.safe_dump(data))

    async with running_harness(time_skipping_env, task_queue, tmp_path, rules) as h:
        customer = h.office.customers[_uk_customer(h)]
        handle = await h.start(alert_request(customer))
        # Sent to the number's E.164 form, however the CRM wrote it.
        [text] = await h.wait_for_sms("+442079460018", 1)
        assert "ACME Inc" in text
        await handle.terminate("test done")


async def test_the_send_activity_reports_why_it_did_not_send(h: Harness) -> None:
    office: Any = h.office  # stands in for the SMS and push clients
    engine = create_db_engine(h.settings.database_url)
    try:
        activities = MessagingActivities(
            office,
            office,
            OptOutStore(engine),
            h.settings.address_hash_key.get_secret_value(),
            RuleStore(None),
        )
        req = SendSms(to=LONDON, body="hi", purpose="test", idempotency_key="k-uk")
        assert (await activities.send_sms(req)).delivery is Delivery.SUPPRESSED_COUNTRY
        bad = req.model_copy(update={"to": "+15550000001", "idempotency_key": "k-bad"})
        assert (await activities.send_sms(bad)).delivery is Delivery.SUPPRESSED_INVALID_NUMBER
        us = req.model_copy(update={"to": "+1 202-555-0188", "idempotency_key": "k-us"})
        assert (await activities.send_sms(us)).delivery is Delivery.SENT
    finally:
        engine.dispose()
    assert [(m.body["to"], m.key) for m in h.office.sms] == [("+12025550188", "k-us")]
