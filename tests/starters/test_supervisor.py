"""`fiflow up`'s process manager on real processes: a part is stopped with everything it
started, it dies with `fiflow up`, and `fiflow status` does not trust a reused pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fiflow.starters import supervisor
from fiflow.starters.supervisor import Part, Supervisor, process_start, read_status

# A part that starts a grandchild (`sleep`), writes the grandchild's pid to argv[1], and
# idles. With "stubborn" both ignore SIGTERM (an ignored signal stays ignored across exec).
PARENT = """
import signal, subprocess, sys, time
if sys.argv[2] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen(["sleep", "60"])
with open(sys.argv[1] + ".tmp", "w") as out:
    out.write(str(grandchild.pid))
import os; os.replace(sys.argv[1] + ".tmp", sys.argv[1])
if sys.argv[3] == "exit":
    sys.exit(3)
time.sleep(60)
"""


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, waiting for its reaper, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def pgid_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[2])


def wait_for(check: Callable[[], object], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def grandchild_pid(pidfile: Path) -> int:
    wait_for(pidfile.exists, "the part's grandchild")
    return int(pidfile.read_text())


def part_args(pidfile: Path, mode: str = "plain", then: str = "idle") -> list[str]:
    return [sys.executable, "-c", PARENT, str(pidfile), mode, then]


@pytest.fixture
def strays() -> Iterator[list[int]]:
    """Pids a test started; any still alive at the end are killed (the test failed)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_stopping_a_part_stops_what_it_started(tmp_path: Path, strays: list[int]) -> None:
    part = Part("parent", part_args(tmp_path / "g"), dict(os.environ), tmp_path / "logs")
    part.start()
    assert part.proc is not None
    strays.append(part.proc.pid)
    grandchild = grandchild_pid(tmp_path / "g")
    strays.append(grandchild)
    # Its own session, so its own group, which the grandchild is in.
    assert os.getsid(part.proc.pid) == part.proc.pid
    assert pgid_of(grandchild) == part.proc.pid

    started = time.monotonic()
    part.stop()
    part.wait(grace_s=5)
    assert time.monotonic() - started < 5  # SIGTERM was enough: no grace waited out
    assert part.proc.returncode == -signal.SIGTERM
    assert not alive(grandchild)


def test_a_part_that_ignores_sigterm_is_killed_with_its_group(
    tmp_path: Path, strays: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    part = Part("stubborn", part_args(tmp_path / "g", "stubborn"), dict(os.environ), tmp_path)
    part.start()
    assert part.proc is not None
    strays.append(part.proc.pid)
    grandchild = grandchild_pid(tmp_path / "g")
    strays.append(grandchild)

    started = time.monotonic()
    part.stop()
    part.wait(grace_s=0.5)
    assert 0.5 <= time.monotonic() - started < 5
    assert part.proc.returncode == -signal.SIGKILL
    assert not alive(grandchild)
    assert "stubborn did not stop in 0s; killing it" in capsys.readouterr().out


def test_a_restart_clears_what_the_dead_part_left(
    tmp_path: Path, strays: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor, "STOP_GRACE_S", 0.5)  # the grandchild ignores SIGTERM
    # The part exits at once, leaving its stubborn grandchild behind in its group.
    args = part_args(tmp_path / "g", "stubborn", then="exit")
    stack = Supervisor(tmp_path)
    part = stack.spawn("leaky", args, dict(os.environ))
    assert part.proc is not None
    first = grandchild_pid(tmp_path / "g")
    strays.append(first)
    (tmp_path / "g").unlink()

    wait_for(lambda: part.exited() is not None, "the part's exit")
    stack.tend()  # notices the exit, schedules the restart
    assert part.restart_at is not None and alive(first)  # SIGTERM is ignored

    def restarted() -> bool:
        stack.tend()
        return part.restarts == 1

    wait_for(restarted, "the restart")
    assert not alive(first)  # killed before the part started again
    second = grandchild_pid(tmp_path / "g")
    strays.append(second)
    assert pgid_of(second) == part.proc.pid  # type: ignore[union-attr]

    started = time.monotonic()
    stack.stop(first=())
    assert time.monotonic() - started < 5
    assert not alive(second)
    assert not (tmp_path / supervisor.STATUS_FILE).exists()


def test_a_part_dies_with_fiflow_up(tmp_path: Path, strays: list[int]) -> None:
    # A stand-in for `fiflow up` that starts one part and is then SIGKILLed: no stop() runs,
    # so only the kernel (PR_SET_PDEATHSIG, set by the exec shim) can end the part.
    code = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from fiflow.starters.supervisor import Part\n"
        "part = Part('sleeper', ['sleep', '60'], dict(os.environ), Path(sys.argv[1]))\n"
        "part.start()\n"
        "print(part.proc.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    up = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    strays.append(up.pid)
    assert up.stdout is not None
    pid = int(up.stdout.readline())
    strays.append(pid)
    # The shim execs the part: same pid, the part's own command line.
    wait_for(lambda: Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep\0"), "exec")
    up.kill()
    up.wait()
    wait_for(lambda: not alive(pid), "the part to die with its parent", within=5)


def write_status(state_dir: Path, status: dict[str, object]) -> None:
    (state_dir / supervisor.STATUS_FILE).write_text(json.dumps(status))


def part_entry(
    name: str, pid: int, proc_start: int | None, state: str = "running"
) -> dict[str, object]:
    return {
        "name": name,
        "pid": pid,
        "proc_start": proc_start,
        "started_at": time.time() - 7200,  # two hours ago
        "restarts": 0,
        "state": state,
    }


def test_status_does_not_trust_a_reused_pid(tmp_path: Path) -> None:
    me = os.getpid()
    started = process_start(me)
    assert started is not None
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_status(
        tmp_path,
        {
            "pid": me,
            "proc_start": started,
            "parts": [
                part_entry("api", me, started),
                # The pid runs, but it is another process than the one recorded.
                part_entry("worker-1", me, started + 1),
                part_entry("worker-2", dead.pid, None),
                part_entry("sandbox", dead.pid, 12345, state="restarting"),
            ],
        },
    )
    status = read_status(tmp_path)
    assert status is not None
    states = {p["name"]: p["state"] for p in status["parts"]}
    assert states == {
        "api": "running",
        "worker-1": "stopped",
        "worker-2": "stopped",
        "sandbox": "restarting",
    }

    shown = subprocess.run(
        [sys.executable, "-m", "fiflow.starters.cli", "status", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line.split() for line in shown.stdout.splitlines()[2:]}
    assert lines["api"][2].startswith("2h0") and lines["api"][3:] == ["0", "running"]
    assert lines["worker-1"][2:] == ["-", "0", "stopped"]


def test_status_of_a_killed_fiflow_up_whose_pid_was_reused_is_none(tmp_path: Path) -> None:
    me = os.getpid()
    started = process_start(me)
    assert started is not None
    write_status(tmp_path, {"pid": me, "proc_start": started - 1, "parts": []})
    assert read_status(tmp_path) is None
    write_status(tmp_path, {"pid": me, "proc_start": started, "parts": []})
    assert read_status(tmp_path) == {"pid": me, "proc_start": started, "parts": []}


def test_the_status_written_names_each_process_by_pid_and_start(tmp_path: Path) -> None:
    stack = Supervisor(tmp_path)
    part = stack.spawn("sleeper", ["sleep", "60"], dict(os.environ))
    try:
        assert part.proc is not None
        written = json.loads((tmp_path / supervisor.STATUS_FILE).read_text())
        assert written["proc_start"] == process_start(os.getpid())
        [entry] = written["parts"]
        assert entry["pid"] == part.proc.pid
        assert entry["proc_start"] == process_start(part.proc.pid) is not None
        status = read_status(tmp_path)
        assert status is not None and status["parts"][0]["state"] == "running"
    finally:
        stack.stop(first=())
    assert part.proc.returncode == -signal.SIGTERM
    assert read_status(tmp_path) is None
