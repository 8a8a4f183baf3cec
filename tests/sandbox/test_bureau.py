"""Credit bureau: pulls, inquiries, idempotent replay, errors and faults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from tests.sandbox.helpers import assert_error, calls, view

REPORT_FIELDS = {
    "pull_id", "customer_id", "kind", "reference", "score", "monthly_debt_payments",
    "open_tradelines", "delinquencies_24m", "recent_inquiries", "pulled_at",
}  # fmt: skip


def pull_body(customer_id: str = "cust-0001", kind: str = "soft", **extra: Any) -> dict[str, Any]:
    """A pull request body."""
    return {
        "customer_id": customer_id,
        "kind": kind,
        "purpose": "credit_application",
        "reference": "app-1",
        **extra,
    }


async def pull(
    sandbox: httpx.AsyncClient, customer_id: str = "cust-0001", kind: str = "soft", key: str = ""
) -> httpx.Response:
    """POST /bureau/pulls, with an Idempotency-Key when one is given."""
    headers = {"Idempotency-Key": key} if key else {}
    return await sandbox.post("/bureau/pulls", json=pull_body(customer_id, kind), headers=headers)


async def test_soft_pull_reports_the_profile(sandbox: httpx.AsyncClient) -> None:
    response = await pull(sandbox, "cust-0004")
    assert response.status_code == 201
    report = response.json()
    assert set(report) == REPORT_FIELDS
    assert report["pull_id"].startswith("pull-")
    assert (report["customer_id"], report["kind"], report["reference"]) == (
        "cust-0004",
        "soft",
        "app-1",
    )
    assert (report["score"], report["monthly_debt_payments"]) == (560, 1500)
    assert report["delinquencies_24m"] == 2 and report["open_tradelines"] == 7
    assert isinstance(report["recent_inquiries"], int) and report["recent_inquiries"] >= 0
    pulled_at = datetime.fromisoformat(report["pulled_at"].replace("Z", "+00:00"))
    assert pulled_at.utcoffset() is not None and pulled_at.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - pulled_at).total_seconds()) < 60


async def test_every_profile_is_what_the_bureau_reports(sandbox: httpx.AsyncClient) -> None:
    for profile in await view(sandbox, "/__sandbox/credit-profiles"):
        report = (await pull(sandbox, profile["customer_id"])).json()
        assert report["score"] == profile["score"]
        assert report["monthly_debt_payments"] == profile["monthly_debt_payments"]
        assert report["open_tradelines"] == profile["open_tradelines"]
        assert report["delinquencies_24m"] == profile["delinquencies_24m"]
        assert 300 <= report["score"] <= 850


async def test_hard_pulls_add_inquiries_soft_pulls_do_not(sandbox: httpx.AsyncClient) -> None:
    first = (await pull(sandbox, "cust-0002")).json()
    again = (await pull(sandbox, "cust-0002")).json()
    assert again["recent_inquiries"] == first["recent_inquiries"]
    other_before = (await pull(sandbox, "cust-0003")).json()["recent_inquiries"]

    hard = (await pull(sandbox, "cust-0002", "hard")).json()
    assert hard["score"] == first["score"] == 705
    # The report shows the file as it stood when pulled: this inquiry counts from the next.
    assert hard["recent_inquiries"] == first["recent_inquiries"]
    after = (await pull(sandbox, "cust-0002")).json()
    assert after["recent_inquiries"] == first["recent_inquiries"] + 1
    await pull(sandbox, "cust-0002", "hard")
    assert (await pull(sandbox, "cust-0002")).json()["recent_inquiries"] == first[
        "recent_inquiries"
    ] + 2
    assert (await pull(sandbox, "cust-0003")).json()["recent_inquiries"] == other_before


async def test_replayed_hard_pull_is_one_pull(sandbox: httpx.AsyncClient) -> None:
    baseline = (await pull(sandbox, "cust-0001")).json()["recent_inquiries"]
    first = await pull(sandbox, "cust-0001", "hard", key="credit-app-9/hard-pull")
    second = await pull(sandbox, "cust-0001", "hard", key="credit-app-9/hard-pull")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers

    hard = await view(sandbox, "/__sandbox/bureau/pulls", kind="hard")
    assert hard == [
        {
            "pull_id": first.json()["pull_id"],
            "customer_id": "cust-0001",
            "kind": "hard",
            "reference": "app-1",
            "idempotency_key": "credit-app-9/hard-pull",
            "pulled_at": first.json()["pulled_at"],
        }
    ]
    assert (await pull(sandbox, "cust-0001")).json()["recent_inquiries"] == baseline + 1
    recorded = await calls(sandbox, system="bureau", idempotency_key="credit-app-9/hard-pull")
    assert [(c["replayed"], c["status_code"]) for c in recorded] == [(False, 201), (True, 201)]
    assert recorded[0]["body"] == pull_body("cust-0001", "hard")
    assert recorded[0]["path"] == "/bureau/pulls"


async def test_pull_log_filters(sandbox: httpx.AsyncClient) -> None:
    await pull(sandbox, "cust-0001", "soft")
    await pull(sandbox, "cust-0002", "hard")
    await pull(sandbox, "cust-0001", "hard")
    everything = await view(sandbox, "/__sandbox/bureau/pulls")
    assert [(p["customer_id"], p["kind"]) for p in everything] == [
        ("cust-0001", "soft"),
        ("cust-0002", "hard"),
        ("cust-0001", "hard"),
    ]
    assert all(p["idempotency_key"] is None for p in everything)
    mine = await view(sandbox, "/__sandbox/bureau/pulls", customer_id="cust-0001")
    assert [p["kind"] for p in mine] == ["soft", "hard"]
    both = await view(sandbox, "/__sandbox/bureau/pulls", customer_id="cust-0001", kind="hard")
    assert [p["pull_id"] for p in both] == [everything[2]["pull_id"]]
    bad = await sandbox.get("/__sandbox/bureau/pulls", params={"kind": "medium"})
    assert_error(bad, 422, "invalid_request")


async def test_unknown_customer_and_invalid_pulls(sandbox: httpx.AsyncClient) -> None:
    missing = await pull(sandbox, "cust-9999", "hard", key="k-missing")
    assert_error(missing, 404, "customer_not_found")
    # A failure is not stored: the same key is evaluated again.
    assert_error(
        await pull(sandbox, "cust-9999", "hard", key="k-missing"), 404, "customer_not_found"
    )
    for bad in (
        pull_body(kind="medium"),
        pull_body(purpose=""),
        pull_body(reference="x" * 201),
        {"customer_id": "cust-0001", "kind": "soft"},
    ):
        response = await sandbox.post("/bureau/pulls", json=bad)
        assert_error(response, 422, "invalid_request")
    assert await view(sandbox, "/__sandbox/bureau/pulls") == []
    recorded = await calls(sandbox, system="bureau")
    assert [c["status_code"] for c in recorded] == [404, 404, 422, 422, 422, 422]
    assert [c["replayed"] for c in recorded[:2]] == [False, False]


async def test_fault_then_success(sandbox: httpx.AsyncClient) -> None:
    fault = {"system": "bureau", "status_code": 503, "remaining": 1}
    assert (await sandbox.post("/__sandbox/faults", json=fault)).status_code == 200
    failed = await pull(sandbox, "cust-0001", "hard", key="k-fault")
    assert_error(failed, 503, "injected_fault")
    assert await view(sandbox, "/__sandbox/bureau/pulls") == []
    ok = await pull(sandbox, "cust-0001", "hard", key="k-fault")
    assert ok.status_code == 201 and "idempotent-replayed" not in ok.headers
    assert len(await view(sandbox, "/__sandbox/bureau/pulls")) == 1
    recorded = await calls(sandbox, system="bureau")
    assert [(c["fault"], c["status_code"]) for c in recorded] == [(True, 503), (False, 201)]
    assert await view(sandbox, "/__sandbox/faults") == []
