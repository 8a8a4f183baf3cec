"""`fiflow up` as a subprocess on free ports, for end-to-end tests over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from temporalio.converter import DataConverter

from fiflow.integrations.settings import Settings
from fiflow.integrations.temporal import data_converter
from fiflow.starters.api.sessions import mint_customer_session
from tests.sandbox.servers import REPO_ROOT

SYSTEM_KEY = {"X-API-Key": "local-system-key"}
CHANNEL_KEY = {"X-API-Key": "local-channel-key"}
REVIEWER_KEY = {"X-API-Key": "local-reviewer-key"}
# Staff keys name a person (FIFLOW_STAFF_KEYS' local defaults): reviews and activations need one.
REVIEWER_PERSON_KEY = {"X-API-Key": "local-reviewer-1-key"}
ADMIN_PERSON_KEY = {"X-API-Key": "local-admin-1-key"}
ADMIN_2_PERSON_KEY = {"X-API-Key": "local-admin-2-key"}


def channel_for(customer_id: str) -> dict[str, str]:
    """The channel key with the customer's session, as the FI's login would mint it."""
    key = Settings().customer_session_key.get_secret_value()
    return {**CHANNEL_KEY, "X-Customer-Session": mint_customer_session(key, customer_id)}


@dataclass
class RunningStack:
    """Where the parts of one `fiflow up` listen."""

    proc: subprocess.Popen[bytes]
    api: str
    sandbox: str
    temporal: str
    ui: str
    codec: str
    state_dir: Path
    log: Path
    nats: str = ""  # nats://127.0.0.1:<port>: the transaction stream

    def data_converter(self) -> DataConverter:
        """The stack's own converter: its payloads are encrypted with the state dir's key."""
        settings = Settings(payload_key_file=self.state_dir / "payload.key")
        return data_converter(settings)

    def codec_token(self) -> str:
        """The codec server's shared token that `fiflow up` generated."""
        return (self.state_dir / "codec.token").read_text().strip()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, like a service manager; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop_in_background(self) -> None:
        """SIGTERM now, without waiting: a stack takes seconds to drain (workers finish what
        they hold), and the next module's tests need not wait for it. Its exit code is still
        checked: tests/e2e/conftest.py asserts 0 for each of these when the session ends."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        STOPPING.append(self)


# Stacks stopped with `stop_in_background`, whose exit codes are checked at the session's end.
STOPPING: list[RunningStack] = []


PORT_NAMES = ("temporal", "ui", "sandbox", "api", "codec", "nats")


def start_stack(
    state_dir: Path,
    workers: int = 2,
    deadline_s: float = 90.0,
    extra_env: dict[str, str] | None = None,
    metrics_port: int = 0,
    feed_consumers: int = 1,
) -> RunningStack:
    """Start `fiflow up` and wait for its banner (printed once every part answered).

    `extra_env` is set on top of the cleaned environment (e.g. a rules directory).
    """
    stack = launch_stack(state_dir, workers, extra_env, metrics_port, feed_consumers)
    deadline = time.monotonic() + deadline_s
    while "fiflow is up" not in stack.output():
        if stack.proc.poll() is not None or time.monotonic() > deadline:
            stack.stop()
            raise RuntimeError(f"fiflow up did not start:\n{stack.output()}")
        # Reading the log is cheap; polling often saves each stack start up to a poll.
        time.sleep(0.05)
    return stack


def launch_stack(
    state_dir: Path,
    workers: int = 2,
    extra_env: dict[str, str] | None = None,
    metrics_port: int = 0,
    feed_consumers: int = 1,
    ports: dict[str, int] | None = None,
) -> RunningStack:
    """Start `fiflow up` without waiting for it; `ports` (by PORT_NAMES) default to free ones."""
    ports = ports or dict(zip(PORT_NAMES, distinct_free_ports(len(PORT_NAMES)), strict=True))
    log = state_dir.parent / f"{state_dir.name}-up.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIFLOW_", "TEMPORAL_"))}
    # Each test takes customers nobody else used: seed enough for the whole e2e suite.
    env["SANDBOX_CUSTOMER_COUNT"] = "64"
    env.update(extra_env or {})
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fiflow.starters.cli",
                "up",
                "--workers",
                str(workers),
                "--temporal-port",
                str(ports["temporal"]),
                "--ui-port",
                str(ports["ui"]),
                "--sandbox-port",
                str(ports["sandbox"]),
                "--api-port",
                str(ports["api"]),
                "--codec-port",
                str(ports["codec"]),
                "--nats-port",
                str(ports["nats"]),
                "--feed-consumers",
                str(feed_consumers),
                # Off unless asked: the API and each worker take consecutive ports.
                "--metrics-port",
                str(metrics_port),
                "--state-dir",
                str(state_dir),
            ],  # fmt: skip
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=env,
        )
    return RunningStack(
        proc=proc,
        api=f"http://127.0.0.1:{ports['api']}",
        sandbox=f"http://127.0.0.1:{ports['sandbox']}",
        temporal=f"127.0.0.1:{ports['temporal']}",
        ui=f"http://127.0.0.1:{ports['ui']}",
        codec=f"http://127.0.0.1:{ports['codec']}",
        state_dir=state_dir,
        log=log,
        nats=f"nats://127.0.0.1:{ports['nats']}",
    )


def distinct_free_ports(count: int) -> list[int]:
    """Ports nothing listens on, all different: each socket stays bound until all are chosen.

    Asking one at a time can hand out the same port twice (the kernel reuses a port just
    released), and then two parts of one stack collide (seen: the codec on Temporal's port).
    """
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def listening(port_url: str) -> bool:
    """Whether anything still answers at host:port."""
    try:
        httpx.get(port_url if "://" in port_url else f"http://{port_url}", timeout=0.5)
    except httpx.TransportError:
        return False
    return True
