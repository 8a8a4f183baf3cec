"""Reply correlation on the real workflows: ConversationWorkflow and FraudAlertWorkflow agree
with the oracle of tests/domain/test_reply_correlation_property.py.

Fewer cases than the domain property test (each runs real alerts on the time-skipping server):
a fixed, derandomised set of hypothesis examples. Each opens one to three alerts for a fresh
customer, then delivers the customer's messages the way the SMS webhook does, reordered and
with provider retries (the same MessageSid again). The oracle says, message by message, which
alert a reply must reach, which route the conversation must take and which messages get an
answer; the test checks the conversation's routing log, each alert's recorded reply and the
texts the SMS stand-in received.
"""

from __future__ import annotations

import random

from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from fiflow.domain.alerts import AlertState, ReplyOutcome
from fiflow.domain.conversations import AutoReplyLimit, Route
from fiflow.domain.replies import ReplyKind
from fiflow.workflows.conversation import ConversationWorkflow
from fiflow.workflows.fraud_alert import FraudAlertWorkflow
from tests.domain.test_reply_correlation_property import Choices, Oracle, Sent, new_message
from tests.workflows.harness import Harness, alert_request, poll, poll_async, sms_customer

CASES = 16


def _cases() -> list[tuple[int, list[int], int]]:
    """(alerts, steps, shuffle seed) for each case: hypothesis's derandomised examples."""
    found: list[tuple[int, list[int], int]] = []

    @settings(max_examples=CASES, derandomize=True, database=None, phases=[Phase.generate])
    @given(
        st.integers(min_value=1, max_value=3),
        st.lists(st.integers(min_value=0, max_value=2**40), min_size=3, max_size=9),
        st.integers(min_value=0, max_value=2**16),
    )
    def collect(alerts: int, steps: list[int], seed: int) -> None:
        found.append((alerts, steps, seed))

    collect()
    return found


ACTIONS = ["send", "send", "deliver", "deliver", "deliver"]


async def test_the_workflows_route_every_reply_as_the_oracle_says(h: Harness) -> None:
    cases = _cases()
    assert len(cases) == CASES
    phones = [await _run_case(h, n, *case) for n, case in enumerate(cases)]
    # The new code paths (patched) replay: each conversation's history against today's code.
    replayer = Replayer(
        workflows=[ConversationWorkflow, FraudAlertWorkflow], data_converter=pydantic_data_converter
    )
    for phone in phones:
        handle = h.client.get_workflow_handle(h.conversation_id(phone))
        await replayer.replay_workflow(await handle.fetch_history())


async def _run_case(h: Harness, n: int, alerts: int, steps: list[int], seed: int) -> str:
    """Run one case on a fresh customer; their phone number."""
    customer = h.add(sms_customer())
    phone = customer.phone or ""
    conv_id = h.conversation_id(phone)
    # A limit no case reaches: which answers go out is the oracle's question, not the limit's.
    await h.start_conversation(phone, auto_replies=AutoReplyLimit(max_answers=100))
    oracle = Oracle()
    handles = {}
    for i in range(alerts):
        handle = await h.start(alert_request(customer, amount=f"{10 + i}.00"))
        status = await h.wait_status(handle, lambda s: s.state is AlertState.AWAITING_REPLY)
        assert status.reply_code is not None
        handles[status.alert_id] = handle
        oracle.codes[status.alert_id] = oracle.open[status.alert_id] = status.reply_code
    assert len(set(oracle.open.values())) == alerts  # no two open alerts share a code

    # The customer's messages, delivered as the steps say (reordered, some twice).
    in_flight: list[Sent] = []
    deliveries: list[Sent] = []
    for i, step in enumerate(steps):
        pick = Choices(step)
        if pick.pick(ACTIONS) == "send" or not in_flight:
            in_flight.append(new_message(pick, oracle, i))
            in_flight[-1].message_id = f"SM{n:02d}x{i:03d}{phone[-4:]}"
        else:
            j = pick.pick(range(len(in_flight)))
            deliveries.append(in_flight[j] if pick.pick([False, True]) else in_flight.pop(j))
    rest = list(in_flight)
    random.Random(seed).shuffle(rest)
    deliveries += rest

    expected: list[tuple[str, Route, str | None]] = []
    answered: set[str] = set()
    forwarded: dict[str, Sent] = {}
    stored_out = False  # what the opt-out database holds
    for msg in deliveries:
        await h.reply(phone, msg.body, message_id=msg.message_id)
        if msg.message_id in oracle.handled:
            continue  # a retry: no effect, no answer
        oracle.handled.add(msg.message_id)
        route, alert_id = oracle.expect(msg)
        expected.append((msg.message_id, route, alert_id))
        if route is Route.FORWARD:
            assert alert_id is not None
            forwarded[alert_id] = msg
            oracle.close(alert_id)
        elif route in (Route.OPT_OUT, Route.OPT_IN):
            opting_out = route is Route.OPT_OUT
            if opting_out != stored_out:  # the carrier's confirmation, once per change
                answered.add(msg.message_id)
            stored_out = oracle.opted_out = opting_out
        elif route is Route.HELP or not oracle.opted_out:
            answered.add(msg.message_id)

    snap = await poll_async(
        lambda: h.snapshot(phone),
        lambda s: s.messages_handled == len(expected) and s.opt_out_writes_pending == 0,
    )
    case = f"case {n}: {[(m.message_id, m.body) for m in deliveries]}"
    got = [(d.message_id, d.route, d.alert_id) for d in snap.routing_log]
    want = [
        (mid, route, alert_id if route in (Route.FORWARD, Route.EXPIRED) else None)
        for mid, route, alert_id in expected
    ]
    assert [(m, r) for m, r, _ in got] == [(m, r) for m, r, _ in want], case
    for (_, route, got_alert), (_, _, want_alert) in zip(got, want, strict=True):
        if route is Route.FORWARD or want_alert is not None:
            assert got_alert == want_alert, case
    assert {a.alert_id for a in snap.open_alerts} == set(oracle.open), case

    # Each alert took the reply meant for it, or none; never a second one.
    for alert_id, handle in handles.items():
        meant = forwarded.get(alert_id)
        if meant is None:
            status = await handle.query(FraudAlertWorkflow.status)
            assert status.reply is None and status.ignored_replies == [], case
            continue
        status = await h.wait_status(handle, lambda s: s.reply is not None)
        assert status.reply is not None and status.reply.message_id == meant.message_id, case
        want_outcome = ReplyOutcome.CONFIRM if meant.kind is ReplyKind.YES else ReplyOutcome.CONTEST
        assert status.reply.outcome is want_outcome, case
        assert status.ignored_replies == [], case

    # Every message answered at most once, and exactly those the oracle says.
    def answers() -> list[str]:
        prefix = f"{conv_id}:answer:"
        return [c.key.removeprefix(prefix) for c in h.office.sms if c.key.startswith(prefix)]

    got_answers = await poll(answers, lambda a: set(a) >= answered)
    assert sorted(got_answers) == sorted(answered), case
    return phone
