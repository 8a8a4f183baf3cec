"""The benchmark's options, shared by every module (the command line fills them in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Options:
    """Command-line options; see `cli.parse_args` for what each means."""

    api: str = "http://127.0.0.1:8000"
    sandbox: str = "http://127.0.0.1:8100"
    temporal: str = "127.0.0.1:7233"
    namespace: str = "default"
    state_dir: Path = Path(".fiflow")
    api_key: str = "local-system-key"
    reply: str = "mixed"
    timeout: float = 30.0
    max_in_flight: int = 2000
    connections: int = 100
    history_sample: int = 50
    workers: int | None = None  # floor worker processes; None: as many as the stack runs
    flows: tuple[str, ...] = ("floor", "alert")
    # Single-rate mode when rate is set; the knee search otherwise.
    rate: float | None = None
    duration: float = 60.0
    # Knee search.
    start_rate: float = 4.0
    max_rate: float = 256.0
    step_seconds: float = 20.0
    bisect_steps: int = 3
    resolution: float = 0.1
    settle_seconds: float = 3.0
    half_seconds: float = 60.0
    warmup_seconds: float = 5.0
    # Knee gates (p99, seconds) and the half-knee targets the report compares against.
    knee_p99_s: float = 1.0
    half_sms_p99_s: float = 0.25
    half_fraud_p99_s: float = 0.30
    # CPU pinning of the stack's processes (Linux CPU lists such as "0-1,3"), for scale-out.
    pin_server: str | None = None
    pin_workers: str | None = None
    json_out: Path | None = None
    scaleout: tuple[Path, Path] | None = None  # compare two saved runs instead of running
