"""Business metrics end to end on `fiflow up`: confirmed and contested alerts, the metrics
schedule `fiflow up` created, triggered, and `GET /v1/metrics/summary` counting them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import httpx
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow, ScheduleOverlapPolicy

from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import CHANNEL_KEY, REVIEWER_KEY, RunningStack
from tests.e2e.test_alerts_e2e import alert, alert_with_its_sms
from tests.e2e.waiting import eventually

STARTED = "alerts_started"


async def _summary(http: httpx.AsyncClient, stack: RunningStack) -> dict:
    r = await http.get(
        f"{stack.api}/v1/metrics/summary", params={"period": "hour"}, headers=REVIEWER_KEY
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _count(summary: dict, metric: str, **labels: str) -> int:
    return sum(
        p["count"]
        for s in summary["series"]
        if s["metric"] == metric and labels.items() <= s["labels"].items()
        for p in s["points"]
    )


def _counts(summary: dict) -> tuple[int, int, int]:
    return (
        _count(summary, STARTED, type="card_fraud_suspected", source="alerting_system"),
        _count(summary, "alert_outcomes", outcome="confirmed"),
        _count(summary, "alert_outcomes", outcome="contested"),
    )


async def _folded(
    temporal: Client, http: httpx.AsyncClient, stack: RunningStack
) -> Callable[[], Awaitable[dict]]:
    handle = temporal.get_schedule_handle("fiflow-metrics")

    async def get() -> dict:
        # Each triggered pass folds whatever was recorded since the last one. The summary is
        # read once that pass has finished: read at once, it shows the pass before, and a
        # fact folded only by the next pass (an earlier test's alert) would count as ours.
        taken = (await handle.describe()).info.num_actions
        await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        info = (
            await eventually(
                handle.describe,
                lambda d: d.info.num_actions > taken and bool(d.info.recent_actions),
            )
        ).info
        action = info.recent_actions[-1].action
        assert isinstance(action, ScheduleActionExecutionStartWorkflow)
        await temporal.get_workflow_handle(action.workflow_id).result()
        return await _summary(http, stack)

    return get


async def test_confirmed_and_contested_alerts_show_in_the_metrics_summary(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool, temporal: Client
) -> None:
    folded = await _folded(temporal, http, stack)
    before = _counts(await folded())

    replies = ["YES", "YES", "NO"]
    customers = [pool.take() for _ in replies]
    for customer, word in zip(customers, replies, strict=True):
        alert_id, _, code = await alert_with_its_sms(http, stack, customer)
        r = await http.post(
            f"{stack.sandbox}/__sandbox/sms/inbound",
            json={"from": customer["phone"], "body": f"{word} {code}"},
        )
        assert r.status_code == 200, r.text
        await eventually(
            lambda a=alert_id: alert(http, stack, a), lambda a: a["run_status"] == "completed"
        )

    expected = (before[0] + 3, before[1] + 2, before[2] + 1)
    summary = await eventually(folded, lambda s: _counts(s) == expected, within=30)
    assert summary["period"] == "hour" and summary["from"] < summary["to"]
    replies_timed = [s for s in summary["series"] if s["metric"] == "alert_reply_seconds"]
    assert replies_timed and all(p["p50"] is not None for s in replies_timed for p in s["points"])
    # No label carries a customer's ID, number or name.
    text = json.dumps([s["labels"] for s in summary["series"]])
    for customer in customers:
        assert customer["customer_id"] not in text and customer["phone"] not in text
        assert customer.get("name", "\0") not in text

    # Staff only: a channel key may not read the figures.
    r = await http.get(f"{stack.api}/v1/metrics/summary", headers=CHANNEL_KEY)
    assert r.status_code == 403
    r = await http.get(
        f"{stack.api}/v1/metrics/summary", params={"period": "week"}, headers=REVIEWER_KEY
    )
    assert r.status_code == 422
