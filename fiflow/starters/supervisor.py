"""A small process manager for `fiflow up`: start parts, log them, restart the ones that die.

Each part's output goes to the console with the part's name in front and to its own
rotated log file under `<state dir>/logs/`. A part that exits on its own is restarted after
a backoff that doubles with each recent crash; one that crashes `CRASH_LIMIT` times within
`CRASH_WINDOW_S` stops the whole stack, since restarting it again would only hide the fault.
`<state dir>/status.json` says what runs, for `fiflow status`.

Each part runs in its own session (so its own process group): Ctrl-C reaches only
`fiflow up`, and stopping a part signals the whole group, so what the part started itself
(uvicorn workers, a wrapper's server) goes with it instead of being orphaned.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO, Any

STOP_GRACE_S = 15.0
KILL_WAIT_S = 5.0  # SIGKILL cannot be refused; this only bounds a stuck (D-state) exit
RESTART_FIRST_S = 0.5
RESTART_MAX_S = 30.0
CRASH_LIMIT = 5
CRASH_WINDOW_S = 60.0
LOG_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3
STATUS_FILE = "status.json"

_console = threading.Lock()


def say(message: str) -> None:
    """One line from `fiflow up` itself on the console."""
    with _console:
        print(f"fiflow: {message}", flush=True)


# Runs first in each child, then execs the part (same pid; exec keeps the setting): the
# kernel sends SIGTERM to the part if `fiflow up` dies, even by SIGKILL. Done in a shim, not
# a preexec_fn, because preexec_fn is unsafe while other threads (the output pumps) run.
# Checking the parent after prctl closes the race where it died before the call.
_WITH_PARENT_SHIM = """
import os, signal, sys
try:
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except OSError:
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
# Python ignores these at start and exec would keep that: the part gets the defaults.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as exc:
    print(f"cannot start {sys.argv[2]}: {exc}", flush=True)
    sys.exit(127)
"""


def with_parent(args: list[str]) -> list[str]:
    """The command line that runs `args` as a part that dies with `fiflow up` (Linux)."""
    if not sys.platform.startswith("linux"):
        return args  # no PDEATHSIG: Ctrl-C and SIGTERM still stop everything through stop()
    # -I -S: nothing from the environment or site-packages: the shim starts fast.
    return [sys.executable, "-I", "-S", "-c", _WITH_PARENT_SHIM, str(os.getpid()), *args]


def process_start(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot, /proc/<pid>/stat field 22), or None.

    With the pid, it names one process: a pid reused after a crash has another start time.
    None when the process does not exist or there is no /proc (then it cannot be checked).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (the command) is in parentheses and may hold spaces or ")": split after the last.
    rest = stat[stat.rindex(")") + 2 :].split()
    try:
        return int(rest[19])  # fields 3.. follow the command; field 22 is rest[22 - 3]
    except (IndexError, ValueError):
        return None


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is still in process group `pgid`."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except OSError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is the state (field 3), fields[2] the process group (field 5). A zombie
        # waits for its reaper (init, when orphaned) and holds nothing.
        if fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    # Gone already, or (EPERM) the id now names a group that is not ours.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _part_log(name: str, log_dir: Path) -> logging.Logger:
    log = logging.getLogger(f"fiflow.up.{name}.{id(log_dir)}")
    if not log.handlers:
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(
            log_dir / f"{name}.log", maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def _pump(stream: IO[bytes], name: str, log: logging.Logger) -> None:
    """Copy a child's output to the console (prefixed) and its log file, line by line."""
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        log.info(line)
        with _console:
            sys.stdout.write(f"{name:<9}| {line}\n")
            sys.stdout.flush()
    stream.close()


@dataclass
class Part:
    """One child process of the stack, with what it takes to start it again."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # wall clock, for uptime
    proc_start: int | None = None  # process_start(pid): tells this process from a reused pid
    # Set once the part and everything in its group are seen gone: from then on its pid may
    # be reused (even as another group's id), so the group is never signalled again.
    group_gone: bool = False
    restarts: int = 0
    crashes: list[float] = field(default_factory=list)  # monotonic times of recent exits
    restart_at: float | None = None  # monotonic; set while waiting out the backoff

    def start(self) -> None:
        """Start (or start again) the process, its output pumped to console and log."""
        # Own session, so its own process group (pgid == pid): Ctrl-C reaches only
        # `fiflow up`, which then stops the parts in order, each with all it started.
        self.proc = subprocess.Popen(
            with_parent(self.args),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started_at = time.time()
        self.proc_start = process_start(self.proc.pid)
        self.group_gone = False
        assert self.proc.stdout is not None
        pump = threading.Thread(
            target=_pump,
            args=(self.proc.stdout, self.name, _part_log(self.name, self.log_dir)),
            name=f"pump-{self.name}",
            daemon=True,
        )
        pump.start()

    def exited(self) -> int | None:
        """The exit code if the process ended, else None."""
        return None if self.proc is None else self.proc.poll()

    def _leftovers(self) -> bool:
        """Whether anything of the part's process group may still run."""
        if self.proc is None or self.group_gone:
            return False
        if self.proc.poll() is None:
            return True  # the part itself (the group's leader, not yet reaped)
        # The leader is reaped: while any member lives, the kernel keeps its pid unused.
        self.group_gone = not _group_alive(self.proc.pid)
        return not self.group_gone

    def _signal(self, signum: signal.Signals) -> None:
        if self.proc is not None and self._leftovers():
            _signal_group(self.proc.pid, signum)

    def stop(self) -> None:
        """SIGTERM to the part's whole process group (SIGKILL follows in wait())."""
        # Even when the part itself already exited: what it started may still run.
        self._signal(signal.SIGTERM)
        # A stopped (SIGSTOP, a debugger) process acts on SIGTERM only once continued.
        self._signal(signal.SIGCONT)

    def wait(self, grace_s: float | None = None) -> None:
        """Wait for a stopping part and its group; SIGKILL the group if it outstays the grace."""
        if self.proc is None:
            return
        grace_s = STOP_GRACE_S if grace_s is None else grace_s
        deadline = time.monotonic() + grace_s
        with contextlib.suppress(subprocess.TimeoutExpired):  # the group is checked below
            self.proc.wait(timeout=grace_s)
        while self._leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._leftovers():
            say(f"{self.name} did not stop in {grace_s:.0f}s; killing it")
            self.clear_leftovers()

    def clear_leftovers(self) -> None:
        """SIGKILL whatever of the part's group still runs, and wait until it is gone."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        deadline = time.monotonic() + KILL_WAIT_S
        while self._leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)


class CrashLoop(Exception):
    """A part keeps dying: the stack stops instead of restarting it forever."""


@dataclass
class Supervisor:
    """The parts, started in order, restarted when they die, stopped in reverse."""

    state_dir: Path
    parts: list[Part] = field(default_factory=list)

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> Part:
        """Start a part now and keep it supervised."""
        part = Part(name, args, env, self.state_dir / "logs")
        part.start()
        self.parts.append(part)
        self.write_status()
        return part

    def first_dead(self) -> Part | None:
        """The first part that exited on its own (during startup any exit is fatal)."""
        return next((p for p in self.parts if p.exited() is not None), None)

    def tend(self) -> None:
        """Restart parts whose backoff has passed; schedule restarts for new exits.

        Raises CrashLoop when a part exited CRASH_LIMIT times within CRASH_WINDOW_S.
        """
        now = time.monotonic()
        changed = False
        for part in self.parts:
            if part.restart_at is not None:
                if now >= part.restart_at:
                    part.restart_at = None
                    part.restarts += 1
                    # Its leftovers had the backoff to stop (SIGTERM below); they would
                    # hold its ports and files.
                    part.clear_leftovers()
                    part.start()
                    pid = part.proc.pid if part.proc else "?"
                    say(f"{part.name} restarted (pid {pid}, restart {part.restarts})")
                    changed = True
                continue
            code = part.exited()
            if code is None:
                continue
            part.crashes = [t for t in part.crashes if now - t < CRASH_WINDOW_S] + [now]
            if len(part.crashes) >= CRASH_LIMIT:
                raise CrashLoop(
                    f"{part.name} exited {len(part.crashes)} times within "
                    f"{CRASH_WINDOW_S:.0f}s (last exit code {code}); see "
                    f"{part.log_dir / (part.name + '.log')}"
                )
            delay = min(RESTART_FIRST_S * 2 ** (len(part.crashes) - 1), RESTART_MAX_S)
            say(f"{part.name} exited with code {code}; restarting in {delay:.1f}s")
            part.stop()  # what it started itself goes too
            part.restart_at = now + delay
            changed = True
        if changed:
            self.write_status()

    def stop(self, first: tuple[str, ...]) -> None:
        """Stop the parts named by the prefixes in `first` (they drain), then the rest."""
        front = [p for p in self.parts if p.name.startswith(first)]
        back = [p for p in reversed(self.parts) if p not in front]
        for group in (front, back):
            for part in group:
                part.stop()
            for part in group:
                part.wait()
        (self.state_dir / STATUS_FILE).unlink(missing_ok=True)

    def write_status(self) -> None:
        """What runs now, for `fiflow status` (written whole, then renamed into place)."""
        status: dict[str, Any] = {
            "pid": os.getpid(),
            "proc_start": process_start(os.getpid()),
            "parts": [
                {
                    "name": p.name,
                    "pid": p.proc.pid if p.proc else None,
                    "proc_start": p.proc_start,
                    "started_at": p.started_at,
                    "restarts": p.restarts,
                    "state": "restarting" if p.restart_at is not None else "running",
                }
                for p in self.parts
            ],
        }
        path = self.state_dir / STATUS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=1))
        tmp.replace(path)


def _is_process(pid: Any, started: Any) -> bool:
    """Whether `pid` runs and is the process that was recorded (same start time).

    A status file from an older fiflow has no start time: then the pid alone decides.
    """
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError, OverflowError):
        return False
    if started is None:
        return True
    now = process_start(int(pid))
    return now is None or now == started  # None: no /proc here, nothing more to check


def read_status(state_dir: Path) -> dict[str, Any] | None:
    """The status a running `fiflow up` wrote, or None when none runs there.

    A part whose recorded process no longer runs (it died a moment ago, or its pid now
    belongs to another process) reads as `stopped`.
    """
    try:
        status: dict[str, Any] = json.loads((state_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(status, dict) or not _is_process(status.get("pid"), status.get("proc_start")):
        return None  # left behind by a `fiflow up` that was killed (its pid maybe reused)
    for part in status.get("parts", []):
        if part.get("state") == "running" and not _is_process(
            part.get("pid"), part.get("proc_start")
        ):
            part["state"] = "stopped"
    return status
