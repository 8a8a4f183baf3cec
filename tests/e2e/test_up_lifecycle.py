"""`fiflow up` stops cleanly (exit 0, no orphans) and its state survives a restart."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx

from tests.e2e.stack import CHANNEL_KEY, SYSTEM_KEY, RunningStack, listening, start_stack
from tests.fixtures.temporal import venv_binary
from tests.sandbox.servers import free_port


def processes_with_env(marker: str) -> list[int]:
    """PIDs whose environment holds `marker` (every part of one stack inherits its ports)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ.split(b"\0"):
            found.append(int(entry))
    return found


def stop_and_check(stack: RunningStack) -> None:
    marker = f"SANDBOX_PORT={stack.sandbox.rsplit(':', 1)[1]}"
    assert len(processes_with_env(marker)) >= 4  # temporal, sandbox, api, worker
    assert stack.stop() == 0, stack.output()
    assert "fiflow: stopped" in stack.output()
    assert processes_with_env(marker) == []
    for url in (stack.api, stack.sandbox, stack.ui):
        assert not listening(url), url


def test_up_stops_cleanly_and_keeps_state_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = start_stack(state, workers=1)
    try:
        out = first.output()
        for shown in (
            first.api,
            first.sandbox,
            first.ui,
            "local-sms-auth-token",
            "local-system-key",
        ):
            assert shown in out, shown
        customer = httpx.get(f"{first.sandbox}/__sandbox/customers").json()[0]
        body = {
            "source_event_id": "evt-restart-1",
            "customer_id": customer["customer_id"],
            "alert_type": "card_fraud_suspected",
            "transaction": {
                "amount": "20.00",
                "currency": "USD",
                "merchant": "Shop",
                "occurred_at": "2026-11-25T09:00:00Z",
                "card_last4": customer["cards"][0]["last4"],
            },
        }
        r = httpx.post(f"{first.api}/v1/alerts", json=body, headers=SYSTEM_KEY, timeout=10)
        assert r.status_code == 202, r.text
        alert_id = r.json()["alert_id"]
    finally:
        stop_and_check(first)
    assert (state / "temporal.db").exists()

    second = start_stack(state, workers=1)
    try:
        r = httpx.get(f"{second.api}/v1/alerts/{alert_id}", headers=SYSTEM_KEY, timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["status"]["alert_id"] == alert_id
        again = httpx.post(f"{second.api}/v1/alerts", json=body, headers=SYSTEM_KEY, timeout=10)
        assert again.json()["alert_id"] == alert_id
    finally:
        stop_and_check(second)


def test_up_registers_new_search_attributes_in_an_older_state_directory(tmp_path: Path) -> None:
    # A state directory from an older fiflow: its database knows only AlertId.
    state = tmp_path / "state"
    state.mkdir()
    port, ui = free_port(), free_port()
    old = subprocess.Popen(
        [
            venv_binary("temporal"),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--ui-port",
            str(ui),
            "--headless",
            "--db-filename",
            str(state / "temporal.db"),
            "--search-attribute",
            "AlertId=Keyword",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not listening(f"http://127.0.0.1:{port}") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "ApplicationId" not in _attributes(port)
    finally:
        old.terminate()
        old.wait(timeout=30)

    stack = start_stack(state, workers=1)
    try:
        temporal_port = int(stack.temporal.rsplit(":", 1)[1])
        assert {"AlertId", "ApplicationId", "Product", "Decision"} <= _attributes(temporal_port)
        body = {
            "application_id": "app-upgraded-1",
            "customer_id": "cust-0002",
            "product": "overdraft",
            "requested_amount": "300.00",
            "stated_monthly_income": "4000.00",
            "consent": {"credit_pull": True, "given_at": "2026-11-25T09:00:00Z"},
        }
        r = httpx.post(
            f"{stack.api}/v1/credit-applications", json=body, headers=CHANNEL_KEY, timeout=10
        )
        assert r.status_code == 202, r.text
    finally:
        stop_and_check(stack)


def _attributes(port: int) -> set[str]:
    out = subprocess.run(
        [
            venv_binary("temporal"),
            "operator",
            "search-attribute",
            "list",
            "-o",
            "json",
            "--address",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return set(json.loads(out)["customAttributes"])
