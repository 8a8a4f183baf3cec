"""InformationalAlertWorkflow on the time-skipping server: one message, no reply expected."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from temporalio.client import WorkflowHandle

from fiflow.domain import search_attributes as sa
from fiflow.domain.customers import Channel, Customer
from fiflow.domain.feeds.matches import NoticeItem, NoticeRequest, Origin
from fiflow.domain.keys import address_hash, notice_workflow_id
from fiflow.domain.notices import NoticeResult, NoticeStatus
from fiflow.integrations.alert_starts import start_notice
from fiflow.integrations.optouts import OptOutStore
from fiflow.workflows.informational_alert import InformationalAlertWorkflow
from tests.workflows.harness import Harness, dump_history, poll_async, sms_customer

NOON = 12
LATE_EVENING = 23


def item(
    merchant: str = "ACME ONLINE",
    amount: str = "2150",
    reasons: tuple[str, ...] = ("pref_international",),
) -> NoticeItem:
    """One transaction on card 4242."""
    return NoticeItem(
        transaction_id=f"txn-{uuid.uuid4().hex[:12]}",
        reasons=list(reasons),
        amount=amount,
        currency="USD",
        merchant=merchant,
        card_last4="4242",
        occurred_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
    )


def notice(customer: Customer, *items: NoticeItem, **kw: Any) -> NoticeRequest:
    """A notice for the customer (one transaction unless given more)."""
    listed = list(items) or [item()]
    base: dict[str, Any] = {
        "source_event_id": listed[0].transaction_id if len(listed) == 1 else f"b-{uuid.uuid4()}",
        "customer_id": customer.customer_id,
        "alert_type": "digest" if len(listed) > 1 else listed[0].reasons[0],
        "items": listed,
        "origin": Origin.STREAM,
    }
    return NoticeRequest(**{**base, **kw})


async def zone_at(h: Harness, local_hour: int) -> str:
    """A fixed-offset time zone where the server's clock now reads `local_hour` (± minutes)."""
    now = await h.env.get_current_time()
    offset = (local_hour - now.astimezone(UTC).hour) % 24
    if offset > 14:
        offset -= 24
    # Etc/GMT names count the other way round: Etc/GMT-5 is five hours ahead of UTC.
    return f"Etc/GMT{-offset:+d}"


def opt_out(h: Harness, customer: Customer, message_id: str) -> None:
    """The customer's number sent STOP, as stored by the conversation (in the worker's
    database)."""
    assert h.engine is not None
    OptOutStore(h.engine).set_opted_out(
        address_hash(h.settings.address_hash_key.get_secret_value(), customer.phone or ""),
        True,
        keyword="STOP",
        source_message_id=message_id,
        at=datetime.now(UTC),
    )


async def start(h: Harness, req: NoticeRequest) -> WorkflowHandle[Any, NoticeResult]:
    """Start the notice the way the feed paths do."""
    nid = await start_notice(h.client, h.settings, req, datetime.now(UTC))
    return h.client.get_workflow_handle_for(InformationalAlertWorkflow.run, notice_workflow_id(nid))


async def finish(h: Harness, handle: WorkflowHandle[Any, NoticeResult]) -> NoticeResult:
    """The notice's result in real time (its history in the failure message if it fails)."""
    return cast(NoticeResult, await h.finish(cast(Any, handle)))


async def skip_to_end(h: Harness, handle: WorkflowHandle[Any, NoticeResult]) -> NoticeResult:
    """The notice's result, letting the server skip time over its timer."""
    return cast(NoticeResult, await h.skip_to_end(cast(Any, handle)))


async def test_an_sms_notice_goes_out_once_with_its_text_and_key(h: Harness) -> None:
    customer = h.add(sms_customer(timezone=await zone_at(h, NOON)))
    req = notice(customer)
    handle = await start(h, req)

    result = await finish(h, handle)
    # The same transaction again (a redelivery, a batch file): the same notice, nothing new.
    again = await start(h, req)

    assert again.id == handle.id
    assert result.status is NoticeStatus.SENT and result.channel is Channel.SMS
    assert h.office.sms_to(customer.phone or "") == [
        "Fiflow Bank: $2,150.00 at ACME ONLINE on card ending 4242 "
        "(international transaction). No reply needed."
    ]
    [sent] = h.office.sms
    assert sent.key == f"{handle.id}:send:sms" == result.idempotency_key
    assert result.message_id == "SM1"
    assert result.reasons == ["pref_international"] and result.rule_set_version
    assert "send_after" not in result.timings
    assert result.timings["received"] <= result.timings["sent"] <= result.timings["completed"]
    assert [(a.step, a.outcome) for a in result.attempts] == [("send_sms", "done")]
    # The send's audit record names the system and the key the provider saw.
    assert (result.attempts[0].system, result.attempts[0].idempotency_key) == ("sms", sent.key)
    assert h.office.push == []


async def test_one_notice_is_a_short_history(h: Harness) -> None:
    customer = h.add(sms_customer(timezone=await zone_at(h, NOON)))
    handle = await start(h, notice(customer))
    await finish(h, handle)

    kinds = [ev.WhichOneof("attributes") async for ev in handle.fetch_history_events()]

    # Two workflow tasks: the reads (local activities) and the send in the first, the
    # outcome and its business metrics (a local activity behind the "metrics-notice" patch,
    # whose marker comes with a TemporalChangeVersion upsert) in the second; one activity,
    # no timer.
    assert kinds.count("activity_task_scheduled_event_attributes") == 1
    assert kinds.count("workflow_task_completed_event_attributes") == 2
    assert kinds.count("marker_recorded_event_attributes") == 3 + 2
    assert "timer_started_event_attributes" not in kinds
    assert len(kinds) <= 15 + 3, await dump_history(handle)


async def test_a_push_notice_goes_to_the_device_when_the_condition_asks_for_push(
    h: Harness,
) -> None:
    customer = h.add(
        sms_customer(timezone=await zone_at(h, NOON), push_device_id=f"dev-{uuid.uuid4().hex}")
    )

    result = await finish(h, await start(h, notice(customer, channel=Channel.PUSH)))

    assert result.status is NoticeStatus.SENT and result.channel is Channel.PUSH
    [push] = h.office.push
    assert push.body["device_id"] == customer.push_device_id
    assert push.body["body"].endswith("(international transaction). No reply needed.")
    assert push.body["notice_id"] == result.notice_id
    assert push.key.endswith(":send:push") and result.message_id == "push-1"
    assert h.office.sms == []


async def test_a_customer_who_prefers_push_gets_it_without_a_channel_named(h: Harness) -> None:
    customer = h.add(
        sms_customer(
            timezone=await zone_at(h, NOON),
            push_device_id=f"dev-{uuid.uuid4().hex}",
            preferred_channel=Channel.PUSH,
        )
    )

    result = await finish(h, await start(h, notice(customer)))

    assert result.channel is Channel.PUSH and len(h.office.push) == 1 and h.office.sms == []


async def test_an_opted_out_sms_only_customer_is_not_texted_and_it_is_recorded(
    h: Harness,
) -> None:
    customer = h.add(sms_customer(timezone=await zone_at(h, NOON)))
    opt_out(h, customer, "SM-stop-1")

    result = await finish(h, await start(h, notice(customer, channel=Channel.SMS)))

    assert result.status is NoticeStatus.SKIPPED_OPTED_OUT
    assert h.office.sms == [] and h.office.push == []
    assert [(a.step, a.outcome, a.detail) for a in result.attempts] == [
        ("send_sms", "skipped", "address opted out")
    ]
    assert result.channel is None and result.message_id is None
    desc = await h.client.get_workflow_handle(notice_workflow_id(result.notice_id)).describe()
    assert desc.typed_search_attributes.get(sa.ALERT_STATE) == "skipped_opted_out"


async def test_an_opted_out_number_still_gets_the_notice_by_push(h: Harness) -> None:
    customer = h.add(
        sms_customer(timezone=await zone_at(h, NOON), push_device_id=f"dev-{uuid.uuid4().hex}")
    )
    opt_out(h, customer, "SM-stop-2")

    result = await finish(h, await start(h, notice(customer, channel=Channel.SMS)))

    assert result.status is NoticeStatus.SENT and result.channel is Channel.PUSH
    assert h.office.sms == [] and len(h.office.push) == 1
    assert [a.outcome for a in result.attempts] == ["skipped", "done"]


async def test_a_notice_due_in_quiet_hours_waits_until_they_end(h: Harness) -> None:
    customer = h.add(sms_customer(timezone=await zone_at(h, LATE_EVENING)))
    handle = await start(h, notice(customer))

    waiting = await poll_async(
        handle.describe,
        lambda d: d.typed_search_attributes.get(sa.ALERT_STATE) == "waiting_quiet_hours",
    )
    status = await handle.query(InformationalAlertWorkflow.status)
    assert waiting.typed_search_attributes.get(sa.ALERT_STATE) == "waiting_quiet_hours"
    assert status.status is NoticeStatus.WAITING_QUIET_HOURS
    assert h.office.sms == []  # not in the night
    send_after = status.timings["send_after"]
    local = send_after.astimezone(ZoneInfo(customer.timezone))
    assert (local.hour, local.minute) == (8, 0)  # 08:00 on the customer's clock
    assert timedelta(hours=8) < send_after - status.timings["received"] < timedelta(hours=10)

    result = await skip_to_end(h, handle)

    assert result.status is NoticeStatus.SENT and len(h.office.sms) == 1
    assert send_after <= result.timings["sent"] < send_after + timedelta(seconds=30)


async def test_a_notice_allowed_in_quiet_hours_goes_out_at_once(h: Harness) -> None:
    customer = h.add(sms_customer(timezone=await zone_at(h, LATE_EVENING)))
    handle = await start(h, notice(customer, quiet_hours_ok=True))

    result = await finish(h, handle)

    assert result.status is NoticeStatus.SENT and len(h.office.sms) == 1
    assert "send_after" not in result.timings
    assert result.timings["sent"] - result.timings["received"] < timedelta(minutes=1)
    assert "may arrive in quiet hours" in result.path


async def test_a_digest_lists_three_transactions_then_how_many_more(h: Harness) -> None:
    customer = h.add(sms_customer(timezone=await zone_at(h, NOON)))
    items = [
        item("ACME ONLINE", "2150", ("pref_amount_over", "pref_international")),
        item("Corner Shop", "12.5", ("pref_declined",)),
        item("Casino\u202e Royale", "-40", ("high_risk_merchant",)),
        item("Shop 4", "1", ("spend_spike",)),
        item("Shop 5", "1", ("some_new_kind",)),
    ]

    result = await finish(h, await start(h, notice(customer, *items, origin=Origin.BATCH)))

    assert result.items == 5 and result.status is NoticeStatus.SENT
    assert result.reasons == [
        "pref_amount_over",
        "pref_international",
        "pref_declined",
        "high_risk_merchant",
        "spend_spike",
        "some_new_kind",
    ]
    assert h.office.sms_to(customer.phone or "") == [
        "Fiflow Bank: 5 card transactions to note: "
        "$2,150.00 at ACME ONLINE (large purchase, international transaction); "
        "$12.50 at Corner Shop (declined transaction); "
        "-$40.00 at Casino Royale (high-risk merchant abroad) +2 more. No reply needed."
    ]


async def test_an_unknown_customer_ends_with_no_channel_and_sends_nothing(h: Harness) -> None:
    stranger = sms_customer()  # not in the CRM

    result = await finish(h, await start(h, notice(stranger)))

    assert result.status is NoticeStatus.NO_CHANNEL
    assert any("customer profile unavailable" in p for p in result.path)
    assert h.office.sms == [] and h.office.push == []


async def test_search_attributes_and_ids_carry_no_personal_data(h: Harness) -> None:
    customer = h.add(sms_customer(name="Zelda Quixote-Pemberton", timezone=await zone_at(h, NOON)))
    handle = await start(h, notice(customer, item("Mr Pemberton's Flowers")))
    result = await finish(h, handle)

    desc = await handle.describe()
    attrs = {pair.key.name: pair.value for pair in desc.typed_search_attributes}

    assert attrs == {
        "AlertId": result.notice_id,
        "AlertType": "pref_international",
        "AlertState": "sent",
        "Channel": "sms",
        "RuleSetVersion": result.rule_set_version,
        # The SDK's record of the patches this run took (the metrics recording's).
        "TemporalChangeVersion": ["metrics-notice"],
    }
    public = " ".join([handle.id, *(str(v) for v in attrs.values())])
    phone = customer.phone or ""
    for secret in (phone, phone[-7:], "Zelda", "Pemberton", "4242", "2,150", "ACME"):
        assert secret not in public, secret
