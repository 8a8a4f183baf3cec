"""`fiflow up` as a process manager: dead parts come back, a crash loop stops the stack,
every part has its own log file, and `fiflow status` shows what runs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.stack import (
    PORT_NAMES,
    SYSTEM_KEY,
    RunningStack,
    distinct_free_ports,
    launch_stack,
    start_stack,
)
from tests.e2e.test_up_lifecycle import processes_with_env
from tests.e2e.waiting import until
from tests.sandbox.servers import REPO_ROOT

PARTS = ["temporal", "nats", "codec", "sandbox", "api", "worker-1", "feed-1"]


def status(stack: RunningStack) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "fiflow.starters.cli",
            "status",
            "--state-dir",
            str(stack.state_dir),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=30,
    )


def parts(stack: RunningStack) -> dict[str, dict[str, Any]]:
    import json

    data = json.loads((stack.state_dir / "status.json").read_text())
    return {p["name"]: p for p in data["parts"]}


def kill(stack: RunningStack, name: str) -> int:
    pid = int(parts(stack)[name]["pid"])
    os.kill(pid, signal.SIGKILL)
    return pid


def restarted(stack: RunningStack, name: str, old_pid: int, times: int) -> bool:
    part = parts(stack)[name]
    return part["restarts"] == times and part["pid"] != old_pid and part["state"] == "running"


def an_alert_gets_its_sms(stack: RunningStack) -> None:
    customer = httpx.get(f"{stack.sandbox}/__sandbox/customers", timeout=5).json()[3]
    body = {
        "source_event_id": f"evt-{uuid.uuid4().hex[:12]}",
        "customer_id": customer["customer_id"],
        "alert_type": "card_fraud_suspected",
        "transaction": {
            "amount": "12.34",
            "currency": "USD",
            "merchant": "Restart Check",
            "occurred_at": datetime.now(UTC).isoformat(),
            "card_last4": customer["cards"][0]["last4"],
        },
    }
    r = until(
        lambda: (
            resp
            if (
                resp := httpx.post(
                    f"{stack.api}/v1/alerts", json=body, headers=SYSTEM_KEY, timeout=10
                )
            ).status_code
            == 202
            else None
        ),
        "the API takes an alert",
        within=60,
    )
    assert r.status_code == 202

    def sms() -> list[dict[str, Any]]:
        out = httpx.get(
            f"{stack.sandbox}/__sandbox/sms/outbox", params={"to": customer["phone"]}, timeout=5
        ).json()
        return [m for m in out if "Restart Check" in m["body"]]

    until(sms, "the alert's SMS", within=60)


def test_dead_parts_come_back_and_the_stack_still_works(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "state", workers=1)
    try:
        shown = status(stack)
        assert shown.returncode == 0, shown.stderr
        for name in PARTS:
            assert name in shown.stdout
        assert set(parts(stack)) == set(PARTS)

        old = kill(stack, "worker-1")
        until(lambda: restarted(stack, "worker-1", old, 1), "worker-1 restarted", within=60)
        assert "worker-1 exited with code -9; restarting" in stack.output()

        old = kill(stack, "temporal")  # even the dev server: its state is in the state dir
        until(lambda: restarted(stack, "temporal", old, 1), "temporal restarted", within=60)
        until(
            lambda: httpx.get(f"{stack.api}/healthz", timeout=2).json().get("temporal") == "ok",
            "the API reaches Temporal again",
            within=60,
        )
        an_alert_gets_its_sms(stack)

        logs = stack.state_dir / "logs"
        for name in PARTS:
            assert (logs / f"{name}.log").exists(), name
        assert "Temporal Server:" in (logs / "temporal.log").read_text()
        assert "temporal | Temporal Server:" in stack.output()  # and on the console, prefixed
        assert "restarts" in status(stack).stdout
    finally:
        code = stack.stop()
    assert code == 0, stack.output()
    assert not (stack.state_dir / "status.json").exists()
    after = status(stack)
    assert after.returncode == 1 and "no fiflow up is running" in after.stderr


def test_a_part_that_keeps_dying_stops_the_stack(tmp_path: Path) -> None:
    # No worker or feed consumer: only the sandbox's crashes matter here, and each part
    # fewer is one process less to start and stop on a 2-core runner.
    stack = start_stack(tmp_path / "state", workers=0, feed_consumers=0)
    try:
        for n in range(1, 5):
            old = kill(stack, "sandbox")
            until(
                lambda n=n, old=old: restarted(stack, "sandbox", old, n), f"restart {n}", within=60
            )
        kill(stack, "sandbox")  # the fifth exit within the window
        until(lambda: stack.proc.poll() is not None, "fiflow up stops", within=60)
    finally:
        code = stack.stop()
    assert code == 1
    out = stack.output()
    assert "sandbox exited 5 times within 60s" in out
    assert "fiflow: stopped" in out


def test_a_part_that_cannot_start_stops_the_stack_naming_it(tmp_path: Path) -> None:
    ports = dict(zip(PORT_NAMES, distinct_free_ports(len(PORT_NAMES)), strict=True))
    marker = f"SANDBOX_PORT={ports['sandbox']}"  # every part of the stack inherits it
    # NATS's port is taken: it exits at once, while the other parts are still starting.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["nats"]))
        taken.listen()
        stack = launch_stack(tmp_path / "state", workers=1, ports=ports)
        try:
            until(lambda: stack.proc.poll() is not None, "fiflow up gives up", within=120)
        finally:
            code = stack.stop()
    out = stack.output()
    assert code == 1, out
    log = stack.state_dir / "logs" / "nats.log"
    assert f"fiflow: nats exited with code 1; see {log}; stopping" in out
    assert "address already in use" in log.read_text()
    assert "fiflow is up" not in out
    assert out.rstrip().endswith("fiflow: stopped")
    assert processes_with_env(marker) == []  # what had started (Temporal, the sandbox...) is gone
    assert not (stack.state_dir / "status.json").exists()
