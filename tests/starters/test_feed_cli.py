"""`fiflow feed --index i --of N`: which share of the partitions a consumer process reads."""

from __future__ import annotations

import subprocess
import sys


def test_an_index_outside_the_count_is_refused_before_connecting() -> None:
    # Run as a process: the CLI exits without interpreter teardown (os._exit).
    done = subprocess.run(
        [sys.executable, "-m", "fiflow.starters.cli", "feed", "--index", "2", "--of", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--index 2 must be below --of 2" in done.stderr
