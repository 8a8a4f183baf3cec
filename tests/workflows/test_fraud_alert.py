"""FraudAlertWorkflow on the time-skipping server: every way an alert can end."""

from __future__ import annotations

from datetime import timedelta

from fiflow.domain.alerts import AlertOutcome, AlertState, ReplyOutcome
from fiflow.domain.customers import Channel
from fiflow.domain.push_binding import push_token_is_valid
from fiflow.starters.alerts_client import deliver_push_reply
from tests.workflows.harness import Harness, alert_request, code_in, sms_customer


async def test_confirm_records_genuine_and_thanks_the_customer(h: Harness) -> None:
    customer = h.add(sms_customer())
    handle = await h.start(alert_request(customer))
    [alert_sms] = await h.wait_for_sms(customer.phone or "", 1)
    assert "ACME Inc $912.00 on card ending 4242" in alert_sms
    code = code_in(alert_sms)
    assert f"NO {code}" in alert_sms

    await h.reply(customer.phone or "", "Yes!")
    result = await h.finish(handle)

    assert result.outcome is AlertOutcome.CONFIRM
    assert result.state is AlertState.CONFIRMED
    assert result.reply is not None and result.reply.outcome is ReplyOutcome.CONFIRM
    assert result.reply.routed_by == "single open alert"
    assert result.rule_set_version == "2026.12.1"
    assert [c.body["outcome"] for c in h.office.of("fraud")] == ["genuine"]
    assert h.office.of("card") == []  # never pre-blocked, so nothing to unblock
    assert h.office.of("contact_center") == []
    thanks = h.office.sms_to(customer.phone or "")[1]
    assert "marked ACME Inc $912.00 as genuine" in thanks
    assert {"received", "sent", "replied", "decided", "completed"} <= set(result.timings)
    unblock = [a for a in result.actions if a.step.startswith("unblock_card")]
    assert unblock[0].outcome == "skipped"
    # The alert SMS's audit record names the channel and the key the provider saw.
    [sent] = [a for a in result.actions if a.step == "send_sms:alert"]
    assert (sent.outcome, sent.system, sent.idempotency_key) == ("done", "sms", h.office.sms[0].key)


async def test_confirm_unblocks_a_pre_blocked_card(h: Harness) -> None:
    customer = h.add(sms_customer())
    handle = await h.start(alert_request(customer, amount="6400.00"))
    [alert_sms] = await h.wait_for_sms(customer.phone or "", 1)
    await h.reply(customer.phone or "", f"y {code_in(alert_sms)}")
    result = await h.finish(handle)

    assert result.card_pre_blocked
    assert [c.body["blocked"] for c in h.office.of("card")] == [True, False]
    assert result.outcome is AlertOutcome.CONFIRM


async def test_contest_blocks_card_books_priority_callback(h: Harness) -> None:
    customer = h.add(sms_customer())
    handle = await h.start(alert_request(customer))
    [alert_sms] = await h.wait_for_sms(customer.phone or "", 1)
    await h.reply(customer.phone or "", f"NO {code_in(alert_sms)}")
    result = await h.finish(handle)

    assert result.outcome is AlertOutcome.CONTEST
    assert result.state is AlertState.CONTESTED
    assert result.reply is not None and result.reply.routed_by.startswith("reply code")
    assert [c.body["outcome"] for c in h.office.of("fraud")] == ["fraud"]
    assert [c.body["blocked"] for c in h.office.of("card")] == [True]
    [callback] = h.office.of("contact_center")
    assert callback.body == {"reason": "fraud_contested", "priority": "high"}
    # Every write carries the business key and step, never a run ID.
    for call in h.office.calls:
        assert call.key.startswith(f"alert-{result.alert_id}:"), call.key
    assert "we've blocked card ending 4242" in h.office.sms_to(customer.phone or "")[-1]


async def test_no_reply_runs_the_whole_ladder(h: Harness) -> None:
    customer = h.add(sms_customer(push_device_id="dev-ladder"))
    handle = await h.start(alert_request(customer))
    await h.wait_for_sms(customer.phone or "", 1)

    result = await h.skip_to_end(handle)  # the server skips the 15 minutes and the 2 hours

    assert result.outcome is AlertOutcome.NO_REPLY
    assert result.state is AlertState.NO_RESPONSE
    assert result.channels_used == [Channel.SMS, Channel.PUSH]
    resend, notice = h.office.push
    assert resend.body["alert_id"] == result.alert_id and "ACME Inc" in resend.body["body"]
    assert [c.body["outcome"] for c in h.office.of("fraud")] == ["no_response"]
    [callback] = h.office.of("contact_center")
    assert callback.body == {"reason": "fraud_alert_no_response", "priority": "normal"}
    # The notice goes out on the channel the alert last used.
    assert "couldn't reach you" in notice.body["body"]
    waited = result.timings["decided"] - result.timings["sent"]
    assert waited >= timedelta(hours=2, minutes=15)
    assert result.path == ["registered with SMS conversation", "no reply after step 1",
                           "no reply after step 2"]  # fmt: skip


async def test_reply_after_the_alert_closed_is_answered_not_applied(h: Harness) -> None:
    customer = h.add(sms_customer())
    handle = await h.start(alert_request(customer))
    await h.wait_for_sms(customer.phone or "", 1)
    # Past the whole ladder (15 min + 2 h) but well inside the conversation's idle timeout,
    # so the conversation still remembers the closed alert.
    await h.skip(timedelta(hours=3))
    result = await h.finish(handle)
    assert result.outcome is AlertOutcome.NO_REPLY
    sent_before = len(h.office.sms_to(customer.phone or ""))

    await h.reply(customer.phone or "", "NO")
    texts = await h.wait_for_sms(customer.phone or "", sent_before + 1)

    assert "no longer open" in texts[-1] or "expired" in texts[-1], texts[-1]
    assert [c.body["outcome"] for c in h.office.of("fraud")] == ["no_response"]
    assert h.office.of("card") == []
    snap = await h.snapshot(customer.phone or "")
    assert snap.routing_log[-1].route.value == "expired"
    final = await h.finish(handle)
    assert final.reply is None


async def test_push_customer_answers_with_a_push_action(h: Harness) -> None:
    customer = h.add(sms_customer(push_device_id="dev-push-1", preferred_channel=Channel.PUSH))
    handle = await h.start(alert_request(customer))
    status = await h.wait_status(handle, lambda s: s.state is AlertState.AWAITING_REPLY)
    assert status.channel is Channel.PUSH
    assert h.office.push[0].body["device_id"] == "dev-push-1"
    assert h.office.sms_to(customer.phone or "") == []
    # The push carries the token bound to this alert and device, and the alert says where it went.
    token = h.office.push[0].body["reply_token"]
    secret = h.settings.push_token_key.get_secret_value()
    assert push_token_is_valid(secret, status.alert_id, "dev-push-1", token)
    assert not push_token_is_valid(secret, status.alert_id, "dev-other", token)
    assert status.pushed_to == ["dev-push-1"]

    reply_id = f"push:{status.alert_id}:contest"
    await deliver_push_reply(
        h.client, status.alert_id, ReplyOutcome.CONTEST, reply_id, status.timings["sent"]
    )
    await deliver_push_reply(
        h.client, status.alert_id, ReplyOutcome.CONTEST, reply_id, status.timings["sent"]
    )
    result = await h.finish(handle)

    assert result.outcome is AlertOutcome.CONTEST
    assert result.reply is not None and result.reply.channel is Channel.PUSH
    assert result.ignored_replies == []  # the repeated push was deduplicated
    assert len(h.office.of("fraud")) == 1
    assert len(h.office.push) == 2  # the alert, then the outcome on the channel they used


async def test_a_customer_with_no_channel_gets_a_callback(h: Harness) -> None:
    customer = h.add(sms_customer(phone=None))
    result = await h.finish(await h.start(alert_request(customer)))

    assert result.outcome is AlertOutcome.NO_CHANNEL
    assert [c.body["priority"] for c in h.office.of("contact_center")] == ["high"]
    assert [c.body["outcome"] for c in h.office.of("fraud")] == ["no_response"]


async def test_back_office_outage_delays_but_loses_and_duplicates_nothing(h: Harness) -> None:
    customer = h.add(sms_customer())
    handle = await h.start(alert_request(customer))
    [alert_sms] = await h.wait_for_sms(customer.phone or "", 1)
    h.office.failures.update({"fraud": 4, "card": 3, "contact_center": 2})
    await h.reply(customer.phone or "", f"no {code_in(alert_sms)}")
    result = await h.skip_to_end(handle)  # the retries back off over skipped time

    assert h.office.failures == {"fraud": 0, "card": 0, "contact_center": 0}
    assert len(h.office.of("fraud")) == 1
    assert len(h.office.of("card")) == 1
    assert len(h.office.of("contact_center")) == 1
    assert all(a.outcome == "done" for a in result.actions), result.actions


async def test_a_reply_during_the_final_escalation_is_answered_not_dropped(h: Harness) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    handle = await h.start(alert_request(customer))
    await h.wait_for_sms(phone, 1)
    # The final step's first action fails a few times: the alert sits in its final actions,
    # no longer taking replies, while the conversation still counts it as open.
    h.office.failures["fraud"] = 4
    await h.skip(timedelta(hours=2, minutes=15, seconds=1))
    await h.wait_status(handle, lambda s: "no reply after step 2" in s.path)
    await h.reply(phone, "YES")

    result = await h.finish(handle)
    assert result.outcome is AlertOutcome.NO_REPLY
    assert [r.routed_by for r in result.ignored_replies] == ["single open alert"]
    texts = h.office.sms_to(phone)
    assert sum("your reply was not applied" in t for t in texts) == 1, texts
    late = [a for a in result.actions if a.step.startswith("answer_late_reply:")]
    assert [a.outcome for a in late] == ["done"]
