"""The per-number alert cap (alerts.yaml `sms_alert_cap`): over it, alerts merge into a digest."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from fiflow.domain.alerts import AlertOutcome, AlertState
from fiflow.domain.customers import Channel
from tests.workflows.harness import (
    Harness,
    alert_request,
    code_in,
    poll_async,
    running_harness,
    sms_customer,
)

SHIPPED_RULES = Path(__file__).parents[2] / "fiflow" / "rules"


@pytest.fixture
async def capped(
    time_skipping_env: WorkflowEnvironment, task_queue: str, tmp_path: Path
) -> AsyncIterator[Harness]:
    """A harness whose rules let two alerts per hour reach a number as texts of their own."""
    rules = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, rules)
    data = yaml.safe_load((rules / "alerts.yaml").read_text())
    data["sms_alert_cap"] = {"max_alerts": 2, "window": "PT1H", "merge_wait": "PT2M"}
    (rules / "alerts.yaml").write_text(yaml.safe_dump(data))
    async with running_harness(time_skipping_env, task_queue, tmp_path, rules) as harness:
        yield harness


async def test_alerts_over_the_cap_merge_into_one_digest_whose_codes_work(
    capped: Harness,
) -> None:
    h = capped
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    first = await h.start(alert_request(customer, merchant="ACME Inc"))
    await h.wait_for_sms(phone, 1)
    second = await h.start(alert_request(customer, amount="48.10", merchant="Corner Cafe"))
    await h.wait_for_sms(phone, 2)
    third = await h.start(alert_request(customer, amount="7.25", merchant="Bus Fare"))
    fourth = await h.start(alert_request(customer, amount="19.99", merchant="Book Shop"))
    for handle in (third, fourth):
        status = await h.wait_status(handle, lambda s: s.state is AlertState.AWAITING_REPLY)
        assert status.channel is Channel.SMS
        assert [(a.step, a.outcome) for a in status.actions] == [("send_sms:alert", "merged")]
    assert len(h.office.sms_to(phone)) == 2  # over the cap: nothing of their own

    await h.skip(timedelta(minutes=2))  # the digest is due
    texts = await h.wait_for_sms(phone, 3)
    digest = texts[2]
    assert len(texts) == 3, texts
    assert "2 more card alerts" in digest
    third_status = await h.wait_status(third, lambda s: s.reply_code is not None)
    fourth_status = await h.wait_status(fourth, lambda s: s.reply_code is not None)
    assert f"Bus Fare $7.25: code {third_status.reply_code}" in digest
    assert f"Book Shop $19.99: code {fourth_status.reply_code}" in digest
    assert "ACME" not in digest and "Corner Cafe" not in digest

    await h.reply(phone, f"NO {third_status.reply_code}")
    await h.reply(phone, f"YES {fourth_status.reply_code}")
    await h.reply(phone, f"YES {code_in(texts[0])}")
    await h.reply(phone, f"YES {code_in(texts[1])}")
    results = [await h.finish(x) for x in (first, second, third, fourth)]
    outcomes = [r.outcome for r in results]
    assert outcomes == [AlertOutcome.CONFIRM, AlertOutcome.CONFIRM] + [
        AlertOutcome.CONTEST,
        AlertOutcome.CONFIRM,
    ]
    snap = await poll_async(lambda: h.snapshot(phone), lambda s: s.pending == 0)
    assert snap.digests_sent == 1


async def test_an_alert_answered_before_its_digest_is_not_listed(capped: Harness) -> None:
    h = capped
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    for merchant in ("One", "Two"):
        handle = await h.start(alert_request(customer, merchant=merchant))
        await h.wait_status(handle, lambda s: s.state is AlertState.AWAITING_REPLY)
    merged = await h.start(alert_request(customer, merchant="Three"))
    status = await h.wait_status(merged, lambda s: s.state is AlertState.AWAITING_REPLY)
    # The customer answers from the code they will see in the app, before any digest.
    await h.reply(phone, f"NO {status.reply_code}")
    assert (await h.finish(merged)).outcome is AlertOutcome.CONTEST

    await h.skip(timedelta(minutes=3))
    snap = await poll_async(lambda: h.snapshot(phone), lambda s: s.pending == 0)
    assert snap.digests_sent == 0
    assert not any("more card alert" in t for t in h.office.sms_to(phone))
