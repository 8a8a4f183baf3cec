"""Outside text on its way into customer messages, on the time-skipping server."""

from __future__ import annotations

import shutil
import unicodedata
import uuid
from datetime import timedelta
from importlib import resources
from pathlib import Path

import yaml
from temporalio.testing import WorkflowEnvironment

from fiflow.domain.alerts import AlertOutcome
from fiflow.domain.follow_ups import FollowUpInput, Ticket
from fiflow.domain.text import sms_segments
from tests.workflows.harness import (
    Harness,
    alert_request,
    code_in,
    running_harness,
    sms_customer,
)
from tests.workflows.interaction_harness import InteractionHarness

HOSTILE_MERCHANT = "ACME\u202e\x07\nInc"


def hidden_chars(text: str) -> list[str]:
    """Control and format characters (bidi overrides, zero-width, bell, newline) in text."""
    return [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf")]


async def test_alert_sms_carries_a_cleaned_merchant_name(h: Harness) -> None:
    customer = h.add(sms_customer(push_device_id="dev-outside"))
    phone = customer.phone or ""
    handle = await h.start(alert_request(customer, merchant=HOSTILE_MERCHANT))
    [alert_sms] = await h.wait_for_sms(phone, 1)

    assert "ACME Inc $912.00 on card ending 4242" in alert_sms
    assert hidden_chars(alert_sms) == []

    await h.reply(phone, f"YES {code_in(alert_sms)}")
    result = await h.finish(handle)
    assert result.outcome is AlertOutcome.CONFIRM
    thanks = h.office.sms_to(phone)[1]
    assert "marked ACME Inc $912.00 as genuine" in thanks
    assert hidden_chars(thanks) == []


async def test_clarifying_sms_lists_cleaned_summaries(h: Harness) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    first = await h.start(alert_request(customer, merchant=HOSTILE_MERCHANT))
    await h.wait_for_sms(phone, 1)
    second = await h.start(alert_request(customer, amount="48.10", merchant="Corner\tCafe"))
    texts = await h.wait_for_sms(phone, 2)
    acme_code, cafe_code = code_in(texts[0]), code_in(texts[1])

    await h.reply(phone, "yes")
    clarify = (await h.wait_for_sms(phone, 3))[2]
    assert f"ACME Inc $912.00: code {acme_code}" in clarify
    assert f"Corner Cafe $48.10: code {cafe_code}" in clarify
    assert hidden_chars(clarify) == []

    await h.reply(phone, f"YES {acme_code}")
    await h.reply(phone, f"YES {cafe_code}")
    assert (await h.finish(first)).outcome is AlertOutcome.CONFIRM
    assert (await h.finish(second)).outcome is AlertOutcome.CONFIRM


async def test_an_sms_over_the_segment_limit_shortens_the_merchant_first(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(Path(str(resources.files("fiflow") / "rules")), rules)
    data = yaml.safe_load((rules / "alerts.yaml").read_text(encoding="utf-8"))
    data["sms_max_segments"] = 1
    data["templates"]["alert_sms"] += " Questions? Call the number on the back of your card."
    (rules / "alerts.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")

    async with running_harness(time_skipping_env, task_queue, tmp_path, rules) as h:
        customer = h.add(sms_customer())
        phone = customer.phone or ""
        merchant = "Spacious Warehouse Outlet Store Number 42"
        handle = await h.start(alert_request(customer, merchant=merchant))
        [alert_sms] = await h.wait_for_sms(phone, 1)

        assert sms_segments(alert_sms).segments == 1
        assert len(alert_sms) <= 160
        # The merchant gave way; the code, the card and the FI's own words are whole.
        assert merchant not in alert_sms
        assert "Fiflow Bank: Spacious" in alert_sms
        assert "... $912.00 on card ending 4242." in alert_sms
        code = code_in(alert_sms)
        assert alert_sms.endswith(
            f"NO {code} if not. Questions? Call the number on the back of your card."
        )
        await h.reply(phone, f"NO {code}")
        assert (await h.finish(handle)).outcome is AlertOutcome.CONTEST


async def test_follow_up_sms_carries_a_cleaned_ticket_subject(ih: InteractionHarness) -> None:
    customer = ih.customer()
    now = await ih.env.get_current_time()
    noon = (now + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    inp = FollowUpInput(
        follow_up_id=f"fu-{uuid.uuid4().hex[:10]}",
        customer_id=customer.customer_id,
        ticket_id="tkt-outside",
        reason="tech_support",
        subject="Card\u202e reader\x07\n\tbroken\u200b",
        follow_up_at=noon,
        created_at=now,
    )
    ih.office.tickets[inp.ticket_id] = Ticket(
        ticket_id=inp.ticket_id, customer_id=customer.customer_id, subject="x", status="open"
    )
    await ih.finish(await ih.follow_up(inp))

    first = ih.office.sms_to(customer.phone)[0]
    assert '"Card reader broken"' in first
    assert hidden_chars(first) == []
