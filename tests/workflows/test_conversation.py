"""ConversationWorkflow on the time-skipping server: routing, keywords, dedup, continue-as-new."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from fiflow.activities.conversations import auto_reply_limit
from fiflow.domain.alerts import AlertOutcome, AlertRequest, AlertState
from fiflow.domain.conversations import AutoReplyLimit, ConversationInput, Route
from fiflow.domain.keys import address_hash, alert_id_for, reply_code_candidates
from fiflow.integrations.database import create_db_engine
from fiflow.integrations.optouts import OptOutStore
from fiflow.integrations.settings import Settings
from fiflow.workflows.conversation import ConversationWorkflow
from tests.workflows.harness import (
    Harness,
    alert_request,
    code_in,
    new_phone,
    poll_async,
    sms_customer,
)


async def test_two_open_alerts_codeless_reply_asks_which_then_codes_apply(h: Harness) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    first = await h.start(alert_request(customer, merchant="ACME Inc"))
    await h.wait_for_sms(phone, 1)
    second = await h.start(alert_request(customer, amount="48.10", merchant="Corner Cafe"))
    texts = await h.wait_for_sms(phone, 2)
    acme_code, cafe_code = code_in(texts[0]), code_in(texts[1])
    assert acme_code != cafe_code

    await h.reply(phone, "yes")
    texts = await h.wait_for_sms(phone, 3)
    clarify = texts[2]
    assert "2 open alerts" in clarify
    assert f"ACME Inc $912.00: code {acme_code}" in clarify
    assert f"Corner Cafe $48.10: code {cafe_code}" in clarify
    assert h.office.of("fraud") == []  # nothing applied until they say which

    await h.reply(phone, f"YES {acme_code}")
    await h.reply(phone, f"no {cafe_code}")
    acme, cafe = await h.finish(first), await h.finish(second)

    assert acme.outcome is AlertOutcome.CONFIRM
    assert cafe.outcome is AlertOutcome.CONTEST
    assert sorted(c.body["outcome"] for c in h.office.of("fraud")) == ["fraud", "genuine"]
    snap = await h.snapshot(phone)
    routes = [d.route for d in snap.routing_log]
    assert routes == [Route.CLARIFY, Route.FORWARD, Route.FORWARD]
    assert snap.routing_log[0].candidates == [acme_code, cafe_code]
    assert snap.routing_log[1].alert_id == acme.alert_id
    assert snap.open_alerts == []


async def test_duplicate_message_sid_has_no_further_effect(h: Harness) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    handle = await h.start(alert_request(customer))
    await h.wait_for_sms(phone, 1)

    mid = await h.reply(phone, "NO")
    await h.reply(phone, "NO", message_id=mid)  # the provider retries the webhook
    result = await h.finish(handle)
    await h.reply(phone, "NO", message_id=mid)  # and again, after the alert closed

    snap = await poll_async(lambda: h.snapshot(phone), lambda s: s.pending == 0)
    assert snap.messages_handled == 1
    assert len(h.office.of("fraud")) == 1
    assert result.ignored_replies == []
    # The alert SMS and the "contested" notice: no "expired" answer to the retry.
    assert len(h.office.sms_to(phone)) == 2


async def test_stop_start_help(h: Harness, tmp_path: Path) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    store = OptOutStore(create_db_engine(h.settings.database_url))
    digest = address_hash(h.settings.address_hash_key.get_secret_value(), phone)

    await h.reply(phone, "STOP")
    [confirmation] = await h.wait_for_sms(phone, 1)
    assert "unsubscribed" in confirmation
    assert store.is_opted_out(digest)
    await h.reply(phone, "stop")  # already out: no second confirmation

    # An alert to an opted-out customer without push falls back to the rules' callback.
    result = await h.finish(await h.start(alert_request(customer)))
    assert result.outcome is AlertOutcome.NO_CHANNEL
    assert [c.body["priority"] for c in h.office.of("contact_center")] == ["high"]
    assert any(a.outcome == "skipped" and "opted out" in a.detail for a in result.actions)
    assert len(h.office.sms_to(phone)) == 1

    await h.reply(phone, "START")
    texts = await h.wait_for_sms(phone, 2)
    assert "subscribed to SMS alerts again" in texts[1]
    assert not store.is_opted_out(digest)

    await h.reply(phone, "HELP")
    texts = await h.wait_for_sms(phone, 3)
    assert texts[2] == h.settings.fi_help_text

    snap = await h.snapshot(phone)
    routes = [d.route for d in snap.routing_log]
    assert routes == [Route.OPT_OUT, Route.OPT_OUT, Route.OPT_IN, Route.HELP]


async def test_opted_out_customer_with_push_gets_the_alert_by_push(h: Harness) -> None:
    customer = h.add(sms_customer(push_device_id="dev-fallback"))
    phone = customer.phone or ""
    await h.reply(phone, "UNSUBSCRIBE")
    await h.wait_for_sms(phone, 1)

    handle = await h.start(alert_request(customer))
    await poll_async(lambda: _len(h.office.push), lambda n: n >= 1)
    assert h.office.push[0].body["device_id"] == "dev-fallback"
    status = await h.wait_status(handle, lambda s: s.channel is not None)
    assert status.channel is not None and status.channel.value == "push"
    assert len(h.office.sms_to(phone)) == 1  # only the opt-out confirmation


async def _len(items: list) -> int:
    return len(items)


async def test_reply_with_nothing_open_is_answered_politely(h: Harness) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    await h.reply(phone, "yes")
    [answer] = await h.wait_for_sms(phone, 1)
    assert "no open alert" in answer
    assert h.office.calls == []


async def test_continue_as_new_keeps_open_alerts_seen_ids_and_opt_out(h: Harness) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    conv_id = h.conversation_id(phone)
    # A conversation that continues-as-new after very few events, so the test sees it happen.
    first_run = await h.start_conversation(phone, continue_as_new_after_events=40)
    first = await h.start(alert_request(customer, merchant="ACME Inc"))
    second = await h.start(alert_request(customer, merchant="Corner Cafe"))
    texts = await h.wait_for_sms(phone, 2)
    codes = {code_in(t) for t in texts}

    early = await h.reply(phone, "what is this?")
    for n in range(8):
        await h.reply(phone, f"gibberish {n}")
    await poll_async(lambda: h.snapshot(phone), lambda s: s.messages_handled >= 9, within=20)

    desc = await h.client.get_workflow_handle(conv_id).describe()
    assert desc.run_id != first_run, "the conversation should have continued as new"
    snap = await h.snapshot(phone)
    assert {a.reply_code for a in snap.open_alerts} == codes
    assert snap.messages_handled == 9
    # The answer limit's state went across too: three answers to the nine, not three a run.
    assert snap.answers_suppressed == 6
    assert len(h.office.sms_to(phone)) == 2 + 3

    sent = len(h.office.sms_to(phone))
    await h.reply(phone, "again", message_id=early)  # seen before the continue-as-new
    [acme_code] = [code_in(t) for t in texts if "ACME" in t]
    await h.reply(phone, f"yes {acme_code}")
    result = await h.finish(first)
    assert result.outcome is AlertOutcome.CONFIRM
    snap = await h.snapshot(phone)
    assert snap.messages_handled == 10  # the repeated message ID was dropped
    assert len(snap.open_alerts) == 1
    # One "confirmed" notice; nothing answered the repeat.
    assert len(h.office.sms_to(phone)) == sent + 1
    status = await second.describe()
    assert status.status is WorkflowExecutionStatus.RUNNING


async def test_alerts_registering_at_once_never_share_a_reply_code(h: Harness) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    # Two alerts whose preferred codes collide, started together: the conversation picks the
    # codes one registration at a time, so the second gets its next candidate.
    first_choice: dict[str, AlertRequest] = {}
    while True:
        req = alert_request(customer)
        code = reply_code_candidates(
            alert_id_for(h.settings.address_hash_key.get_secret_value(), req.source_event_id)
        )[0]
        if code in first_choice:
            pair = [first_choice[code], req]
            break
        first_choice[code] = req

    handles = await asyncio.gather(*(h.start(r) for r in pair))
    texts = await h.wait_for_sms(phone, 2)

    codes = {code_in(t) for t in texts}
    assert len(codes) == 2, texts
    assert code in codes  # one of them kept the shared first choice
    snap = await h.snapshot(phone)
    assert {a.reply_code for a in snap.open_alerts} == codes
    statuses = [await handle.query("status") for handle in handles]
    assert {s["reply_code"] for s in statuses} == codes


async def test_conversation_ends_when_idle_with_nothing_open(h: Harness) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    handle = await h.start(alert_request(customer))
    await h.wait_for_sms(phone, 1)
    result = await h.skip_to_end(handle)  # nobody answers: the alert closes after its ladder
    assert result.outcome is AlertOutcome.NO_REPLY

    conversation = h.client.get_workflow_handle_for(
        ConversationWorkflow.run, h.conversation_id(phone)
    )
    async with h.env.time_skipping_unlocked():  # type: ignore[attr-defined]
        final = await asyncio.wait_for(conversation.result(), timeout=30)

    assert final.open_alerts == []
    assert [c.alert_id for c in final.closed_alerts] == [result.alert_id]
    desc = await conversation.describe()
    assert desc.status is WorkflowExecutionStatus.COMPLETED
    # It waited the idle timeout after the alert closed, not a moment less.
    assert desc.close_time is not None
    assert (
        desc.close_time - result.timings["completed"]
        >= ConversationInput.model_fields["idle_timeout"].default
    )


LIMIT = auto_reply_limit(Settings())


def test_every_starter_gives_conversations_the_default_limit() -> None:
    limit = auto_reply_limit(Settings())
    assert limit == AutoReplyLimit(max_answers=3, window=timedelta(hours=1))


async def test_a_flood_from_an_unknown_number_gets_the_limit_then_silence(h: Harness) -> None:
    phone = new_phone()
    bodies = ["hello", "yes", "HELP", "no 1234"]  # not understood, nothing open, help
    for n in range(200):
        await h.reply(phone, bodies[n % len(bodies)])
    snap = await poll_async(
        lambda: h.snapshot(phone), lambda s: s.messages_handled == 200, within=60
    )

    texts = h.office.sms_to(phone)
    assert len(texts) == LIMIT.max_answers == 3
    assert texts[2] == h.settings.fi_help_text  # HELP counts like any other answer
    assert snap.answers_suppressed == 197
    assert len(snap.routing_log) == 50  # bounded; every recent entry records the silence
    assert all(d.suppressed for d in snap.routing_log)
    assert {d.route for d in snap.routing_log} == {
        Route.NOT_UNDERSTOOD,
        Route.NO_OPEN_ALERT,
        Route.HELP,
    }

    # Not early: ten minutes before the window ends it is still silent.
    await h.skip(LIMIT.window - timedelta(minutes=10))
    await h.reply(phone, "hello again")
    await poll_async(lambda: h.snapshot(phone), lambda s: s.messages_handled == 201)
    assert len(h.office.sms_to(phone)) == 3

    await h.skip(timedelta(minutes=10))
    await h.reply(phone, "yes")
    texts = await h.wait_for_sms(phone, 4)
    assert "no open alert" in texts[3]
    snap = await h.snapshot(phone)
    assert [d.suppressed for d in snap.routing_log[-2:]] == [True, False]


async def test_an_auto_responder_loop_dies_out(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    phone = new_phone()
    bounces: list[asyncio.Task[str]] = []
    send = h.office.send

    async def send_and_bounce(*args: Any) -> str:
        """The number's auto-responder answers every SMS it gets."""
        before = len(h.office.sms)
        sid = await send(*args)
        if len(h.office.sms) > before and args[0] == phone:
            reply = h.reply(phone, "Auto-reply: I'm driving, I'll get back to you.")
            bounces.append(asyncio.create_task(reply))
        return sid

    monkeypatch.setattr(h.office, "send", send_and_bounce)
    await h.reply(phone, "Auto-reply: I'm out of the office until Monday.")

    snap = await poll_async(
        lambda: h.snapshot(phone), lambda s: s.answers_suppressed >= 1 and s.pending == 0
    )
    await asyncio.gather(*bounces)
    snap = await h.snapshot(phone)
    # Three answers, three bounces, and the fourth message met silence: nothing left to echo.
    assert len(h.office.sms_to(phone)) == len(bounces) == LIMIT.max_answers
    assert snap.messages_handled == 1 + len(bounces)
    assert snap.answers_suppressed == 1
    assert [d.suppressed for d in snap.routing_log] == [False, False, False, True]


async def test_a_reply_to_an_open_alert_is_forwarded_after_the_limit(h: Harness) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    handle = await h.start(alert_request(customer))
    [alert_sms] = await h.wait_for_sms(phone, 1)

    for n in range(5):
        await h.reply(phone, f"what is this? {n}")
    snap = await poll_async(lambda: h.snapshot(phone), lambda s: s.messages_handled == 5)
    assert len(h.office.sms_to(phone)) == 1 + 3
    assert snap.answers_suppressed == 2

    await h.reply(phone, f"YES {code_in(alert_sms)}")
    result = await h.finish(handle)

    assert result.outcome is AlertOutcome.CONFIRM
    assert [c.body["outcome"] for c in h.office.of("fraud")] == ["genuine"]
    # The alert's own "confirmed" notice is not an unsolicited answer either.
    texts = h.office.sms_to(phone)
    assert len(texts) == 1 + 3 + 1 and "thanks" in texts[-1]
    snap = await h.snapshot(phone)
    assert [(d.route, d.suppressed) for d in snap.routing_log] == [
        *[(Route.NOT_UNDERSTOOD, False)] * 3,
        *[(Route.NOT_UNDERSTOOD, True)] * 2,
        (Route.FORWARD, False),
    ]


async def test_stop_is_confirmed_after_the_limit_start_is_not(h: Harness) -> None:
    phone = new_phone()
    store = OptOutStore(create_db_engine(h.settings.database_url))
    digest = address_hash(h.settings.address_hash_key.get_secret_value(), phone)
    for n in range(3):
        await h.reply(phone, f"hello {n}")
    await h.wait_for_sms(phone, 3)

    await h.reply(phone, "STOP")
    texts = await h.wait_for_sms(phone, 4)
    assert "unsubscribed" in texts[3]  # carriers require it: never suppressed
    assert store.is_opted_out(digest)

    await h.reply(phone, "START")
    # The keyword is stored in the background (retried until the database takes it).
    snap = await poll_async(
        lambda: h.snapshot(phone),
        lambda s: s.messages_handled == 5 and s.opt_out_writes_pending == 0,
    )
    assert not store.is_opted_out(digest)  # the opt-in took effect; only its answer is silent
    assert len(h.office.sms_to(phone)) == 4
    assert [(d.route, d.suppressed) for d in snap.routing_log[-2:]] == [
        (Route.OPT_OUT, False),
        (Route.OPT_IN, True),
    ]


async def test_a_steady_stream_still_continues_as_new_and_loses_nothing(h: Harness) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    conv_id = h.conversation_id(phone)
    first_run = await h.start_conversation(
        phone,
        continue_as_new_after_events=40,
        # Every message gets an answer (an activity): the queue drains slowly.
        auto_replies=AutoReplyLimit(max_answers=100, window=timedelta(hours=1)),
    )
    await asyncio.gather(*(h.reply(phone, f"hello {n}") for n in range(30)))
    snap = await poll_async(
        lambda: h.snapshot(phone), lambda s: s.messages_handled == 30 and s.pending == 0, within=30
    )
    assert snap.messages_handled == 30
    answers = await h.wait_for_sms(phone, 30)
    assert len(answers) == 30  # every message answered once, none lost across the runs
    first = h.client.get_workflow_handle(conv_id, run_id=first_run)
    desc = await poll_async(
        first.describe, lambda d: d.status is WorkflowExecutionStatus.CONTINUED_AS_NEW
    )
    # It continued as new while messages were still queued, not after the queue emptied.
    assert desc.history_length < 40 + 30, desc.history_length


async def test_an_alert_to_an_opted_out_sms_only_customer_says_why_it_waits_for_nobody(
    h: Harness,
) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    await h.reply(phone, "STOP")
    await h.wait_for_sms(phone, 1)  # the opt-out confirmation

    result = await h.finish(await h.start(alert_request(customer)))

    # Not "awaiting a reply" from someone who will never get the question: the alert says
    # why and runs the rules' no-channel actions at once.
    assert result.outcome is AlertOutcome.NO_CHANNEL
    assert result.state is not AlertState.AWAITING_REPLY
    assert "no reachable channel" in result.path
    skipped = [a for a in result.actions if a.step == "send_sms:alert"]
    assert [(a.outcome, a.detail) for a in skipped] == [("skipped", "address opted out")]
    assert len(h.office.sms_to(phone)) == 1  # nothing after the confirmation
    assert [c.body["priority"] for c in h.office.of("contact_center")] == ["high"]


async def test_an_alert_terminated_by_an_operator_leaves_the_conversation_too(h: Harness) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    kept = await h.start(alert_request(customer, merchant="ACME Inc"))
    await h.wait_for_sms(phone, 1)
    dropped = await h.start(alert_request(customer, amount="48.10", merchant="Corner Cafe"))
    await h.wait_for_sms(phone, 2)
    await dropped.terminate("stuck run, ended by ops")

    # A code-less reply: with two open alerts it would be a clarifying question; the
    # terminated one is found gone, so the reply goes to the one that still runs.
    await h.reply(phone, "YES")
    result = await h.finish(kept)
    assert result.outcome is AlertOutcome.CONFIRM
    texts = h.office.sms_to(phone)
    assert not any("open alerts" in t for t in texts), texts
    snap = await poll_async(lambda: h.snapshot(phone), lambda s: s.pending == 0)
    assert snap.open_alerts == []
    assert [d.route for d in snap.routing_log] == [Route.FORWARD]


async def test_start_after_stop_lets_an_open_alert_text_again(h: Harness) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    handle = await h.start(alert_request(customer))
    [alert_sms] = await h.wait_for_sms(phone, 1)

    await h.reply(phone, "STOP")
    await h.wait_for_sms(phone, 2)  # the opt-out confirmation
    status = await h.wait_status(handle, lambda s: "address opted out of SMS" in s.path)
    assert "address opted back in to SMS" not in status.path

    await h.reply(phone, "START")
    texts = await h.wait_for_sms(phone, 3)  # sent once the opt-in is stored
    assert "subscribed to SMS alerts again" in texts[2]
    await h.wait_status(handle, lambda s: "address opted back in to SMS" in s.path)

    await h.reply(phone, f"YES {code_in(alert_sms)}")
    result = await h.finish(handle)

    assert result.outcome is AlertOutcome.CONFIRM
    assert result.path[-3:] == [
        "address opted out of SMS",
        "address opted back in to SMS",
        f"reply:confirm via reply code {code_in(alert_sms)}",
    ]
    [notify] = [a for a in result.actions if a.step.startswith("notify_customer:")]
    assert (notify.outcome, notify.detail) == ("done", "sms")
    texts = h.office.sms_to(phone)
    assert len(texts) == 4, texts  # alert, STOP and START confirmations, the thanks
    assert "marked ACME Inc $912.00 as genuine" in texts[3]


async def test_stop_start_stop_leaves_an_open_alert_opted_out(h: Harness) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    handle = await h.start(alert_request(customer))
    [alert_sms] = await h.wait_for_sms(phone, 1)

    await h.reply(phone, "STOP")
    await h.wait_for_sms(phone, 2)
    await h.reply(phone, "START")
    await h.wait_for_sms(phone, 3)
    await h.reply(phone, "STOP")
    await h.wait_for_sms(phone, 4)  # the second opt-out is confirmed too
    await h.wait_status(handle, lambda s: s.path.count("address opted out of SMS") == 2)

    await h.reply(phone, f"YES {code_in(alert_sms)}")
    result = await h.finish(handle)

    assert result.outcome is AlertOutcome.CONFIRM
    assert [p for p in result.path if "opted" in p] == [
        "address opted out of SMS",
        "address opted back in to SMS",
        "address opted out of SMS",
    ]
    [notify] = [a for a in result.actions if a.step.startswith("notify_customer:")]
    assert (notify.outcome, notify.detail) == ("skipped", "address opted out")
    assert len(h.office.sms_to(phone)) == 4  # no thanks after the last STOP
    snap = await poll_async(lambda: h.snapshot(phone), lambda s: s.pending == 0)
    assert snap.sms_opted_out is True


async def test_an_alert_late_in_an_idle_period_gets_a_whole_idle_timeout_after_it(
    h: Harness,
) -> None:
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    await h.reply(phone, "hello")  # nothing open: the conversation starts idle, timer running
    await h.wait_for_sms(phone, 1)
    await h.skip(timedelta(days=2))

    handle = await h.start(alert_request(customer))
    await h.wait_for_sms(phone, 2)
    # Nobody answers: the alert closes after its ladder and tells the conversation so.
    result = await h.skip_to_end(handle)
    assert result.outcome is AlertOutcome.NO_REPLY

    conversation = h.client.get_workflow_handle_for(
        ConversationWorkflow.run, h.conversation_id(phone)
    )
    async with h.env.time_skipping_unlocked():  # type: ignore[attr-defined]
        final = await asyncio.wait_for(conversation.result(), timeout=30)
    assert [c.alert_id for c in final.closed_alerts] == [result.alert_id]
    # The first idle period's timer (due three days after "hello", under one after the
    # alert closed) did not end it: it kept the alert in memory a whole idle timeout.
    desc = await conversation.describe()
    assert desc.close_time is not None
    idle_timeout = ConversationInput.model_fields["idle_timeout"].default
    assert desc.close_time - result.timings["completed"] >= idle_timeout
