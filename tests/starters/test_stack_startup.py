"""`fiflow up`'s startup: what does not depend on anything starts at once, a step waits for
what it needs, and a part, job or schedules run that fails stops the startup with a message
naming it. On real processes where the step runs one."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fiflow.starters import stack as up
from fiflow.starters.stack import StartupError, _bring_up, _Job, _Schedules, _Step
from fiflow.starters.supervisor import Supervisor
from tests.e2e.stack import distinct_free_ports


def recorded(events: list[str], name: str, check: Callable[[], bool]) -> Callable[[], up.Check]:
    """A launch that records itself and returns `check`."""

    def launch() -> up.Check:
        events.append(f"launch {name}")
        return check

    return launch


def test_a_step_waits_for_what_it_needs_and_the_rest_start_at_once(tmp_path: Path) -> None:
    events: list[str] = []
    gate = {"slow": False}

    def slow_ready() -> bool:
        return gate["slow"]

    def quick_ready() -> bool:
        # By now both independent steps were launched, and nothing that needs "slow".
        assert events == ["launch slow", "launch quick"]
        gate["slow"] = True
        return True

    steps = [
        _Step("after slow", recorded(events, "after slow", up._always), ("slow",)),
        _Step("slow", recorded(events, "slow", slow_ready)),
        _Step("quick", recorded(events, "quick", quick_ready)),
        _Step("after both", recorded(events, "after both", up._always), ("slow", "quick")),
    ]
    _bring_up(steps, Supervisor(tmp_path))
    assert events == ["launch slow", "launch quick", "launch after slow", "launch after both"]


def test_a_step_that_needs_an_unknown_step_is_refused(tmp_path: Path) -> None:
    steps = [_Step("api", lambda: up._always, ("databse",))]
    with pytest.raises(ValueError, match="databse"):
        _bring_up(steps, Supervisor(tmp_path))


def test_a_part_that_exits_while_starting_stops_the_startup_naming_its_log(
    tmp_path: Path,
) -> None:
    stack = Supervisor(tmp_path)
    bad = [sys.executable, "-c", "import sys; print('bad configuration'); sys.exit(3)"]

    def spawn_bad() -> up.Check:
        stack.spawn("bad", bad, dict(os.environ))
        return up._always

    steps = [
        _Step("bad", spawn_bad),
        # Never ready: only the part's exit can end the startup (well before the deadline).
        _Step("bad ready", lambda: lambda: False, ("bad",)),
    ]
    try:
        with pytest.raises(StartupError) as err:
            _bring_up(steps, stack)
    finally:
        stack.stop(first=())
    log = tmp_path / "logs" / "bad.log"
    assert str(err.value) == f"bad exited with code 3; see {log}"
    assert "bad configuration" in log.read_text()


def test_a_failed_job_stops_the_startup_with_its_error(tmp_path: Path) -> None:
    def migrate() -> None:
        raise RuntimeError("database is locked")

    steps = [_Step("database", lambda: _Job("database migration", migrate).done)]
    with pytest.raises(StartupError, match="^database migration failed: database is locked$"):
        _bring_up(steps, Supervisor(tmp_path))


def test_a_step_that_never_gets_ready_stops_the_startup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(up, "STARTUP_DEADLINE_S", 0.2)
    steps = [_Step("sandbox ready", lambda: lambda: False)]
    with pytest.raises(StartupError, match="^sandbox did not become ready in 0s$"):
        _bring_up(steps, Supervisor(tmp_path))


def schedules_env(tmp_path: Path) -> dict[str, str]:
    """fiflow's local settings, with Temporal on a port where nothing listens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIFLOW_", "TEMPORAL_"))}
    (port,) = distinct_free_ports(1)
    env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{port}"
    env["FIFLOW_PAYLOAD_KEY_FILE"] = str(tmp_path / "payload.key")
    from fiflow.integrations.codec import ensure_key_file

    ensure_key_file(tmp_path / "payload.key")
    return env


def test_schedules_that_cannot_be_applied_stop_the_startup_with_the_cause(
    tmp_path: Path,
) -> None:
    schedules = _Schedules(schedules_env(tmp_path))
    assert schedules.start()()
    try:
        check = schedules.go()
        # The process imports, connects, fails and exits: poll it like the startup does.
        deadline = time.monotonic() + 120
        with pytest.raises(StartupError) as err:
            while not check() and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        schedules.cancel()
    assert str(err.value).startswith("fiflow schedules apply exited with code 1: ")
    assert "applying schedules failed: Failed client connect" in str(err.value)  # its cause


def test_schedules_still_waiting_when_the_stack_stops_end_with_it(tmp_path: Path) -> None:
    schedules = _Schedules(schedules_env(tmp_path))
    schedules.start()
    assert schedules.proc is not None
    assert schedules.proc.poll() is None  # waits for go()
    schedules.cancel()
    assert schedules.proc.poll() is not None
    assert schedules.output is not None and schedules.output.closed
