"""A small process manager for `fiflow up`: start parts, log them, restart the ones that die.

Each part's output goes to the console with the part's name in front and to its own
rotated log file under `<state dir>/logs/`. A part that exits on its own is restarted after
a backoff that doubles with each recent crash; one that crashes `CRASH_LIMIT` times within
`CRASH_WINDOW_S` stops the whole stack, since restarting it again would only hide the fault.
`<state dir>/status.json` says what runs, for `fiflow status`.
"""

from __future__ import annotations

import ctypes
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

PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 15.0
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


def _die_with_parent() -> None:
    """Runs in the child: the kernel sends SIGTERM if `fiflow up` itself is killed."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: Ctrl-C and SIGTERM still stop everything through stop()


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
    restarts: int = 0
    crashes: list[float] = field(default_factory=list)  # monotonic times of recent exits
    restart_at: float | None = None  # monotonic; set while waiting out the backoff

    def start(self) -> None:
        """Start (or start again) the process, its output pumped to console and log."""
        # Own session: Ctrl-C reaches only `fiflow up`, which then stops the parts in order.
        self.proc = subprocess.Popen(
            self.args,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.started_at = time.time()
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

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)

    def wait(self) -> None:
        """Wait for a stopping process; kill it if it outstays the grace period."""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            say(f"{self.name} did not stop in {STOP_GRACE_S:.0f}s; killing it")
            self.proc.kill()
            self.proc.wait()


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
            "parts": [
                {
                    "name": p.name,
                    "pid": p.proc.pid if p.proc else None,
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


def read_status(state_dir: Path) -> dict[str, Any] | None:
    """The status a running `fiflow up` wrote, or None when none runs there."""
    try:
        status: dict[str, Any] = json.loads((state_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(int(status["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return None  # left behind by a `fiflow up` that was killed
    return status
