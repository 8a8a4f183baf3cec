"""The benchmark's pure pieces: percentiles, the knee search, billable counting, /proc CPU.

No stack, no timing: these check the arithmetic the report is built on.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import (
    ActivityTaskStartedEventAttributes,
    HistoryEvent,
    MarkerRecordedEventAttributes,
    UpsertWorkflowSearchAttributesEventAttributes,
)

from bench.alertbench import accounting, measure, report, scaleout
from bench.alertbench.knee import find_knee
from bench.alertbench.measure import FlowResult, Gate, LoopTimes, Step
from fiflow.starters.supervisor import process_start


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert measure.percentile(values, 50) == 50
    assert measure.percentile(values, 99) == 99
    assert measure.percentile(values, 100) == 100
    assert measure.percentile([3.0], 99) == 3.0
    assert measure.percentile([], 50) is None


def test_latency_summary_skips_unmeasured_values_and_reports_ms() -> None:
    summary = measure.latency_summary([0.1, None, 0.2, 0.3])
    assert summary == {"n": 3, "p50_ms": 200.0, "p95_ms": 300.0, "p99_ms": 300.0, "max_ms": 300.0}


def test_gate_p99_counts_a_failed_flow_as_infinitely_slow() -> None:
    quick = [0.1] * 98
    assert measure.gate_p99([*quick, 0.2, 0.3]) == 0.2
    # Two flows of a hundred never got there: the p99 falls on a failure.
    assert math.isinf(measure.gate_p99([*quick, None, None]) or 0.0)


def _step(latencies: list[float | None], failed: int = 0) -> Step:
    results = [FlowResult(n=i, flow_id=str(i), latency={"x": v}) for i, v in enumerate(latencies)]
    for r in results[:failed]:
        r.failed_step = "x"
    return Step(
        flow="alert",
        rate=10,
        duration=10,
        results=results,
        times=LoopTimes(window=10, wall=12, max_lag=0.0, last_completion=11),
        cpu={"temporal": 2.0, "worker-1": 1.0, "bench": 5.0},
        latencies=("x",),
        gates=(Gate("x", 1.0),),
    )


def test_a_step_passes_on_its_gates_and_shares_cpu_over_completed_flows() -> None:
    step = _step([0.5] * 100)
    assert step.passed()
    cpu = step.cpu_per_flow()
    assert cpu["temporal"] == 0.02
    assert cpu["all"] == 0.03  # the bench's own CPU is not the stack's
    assert step.summary()["gates"]["x"] == {"limit_ms": 1000.0, "p99_ms": 500.0, "ok": True}
    assert not _step([1.5] * 100).passed()
    failing = _step([0.5] * 98 + [None, None])
    assert not failing.passed()
    assert failing.summary()["gates"]["x"]["p99_ms"] is None


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (37.0, 36.0),  # 4 8 16 32 pass, 64 fails; bisect 48 40 36
        (1000.0, 64.0),  # the cap passes: knee = cap, marked capped
        (1.2, 1.125),  # the start fails: halve to 2, 1 (passes); bisect 1.5 1.25 1.125
    ],
)
async def test_knee_search_on_a_synthetic_latency_curve(threshold: float, expected: float) -> None:
    def p99(rate: float) -> float:  # latency explodes past the threshold
        return 0.1 if rate <= threshold else 0.1 * math.exp(rate - threshold) + 1

    tried: list[float] = []

    async def try_rate(rate: float) -> float:
        tried.append(rate)
        return p99(rate)

    found = await find_knee(try_rate, lambda v: v <= 1.0, start=4, max_rate=64, bisect_steps=3)
    assert found.knee == expected
    assert found.capped == (threshold >= 64)
    assert found.at(found.knee) == 0.1
    assert all(ok == (rate <= threshold) for rate, ok, _ in found.steps)
    if threshold == 37.0:
        assert tried == [4, 8, 16, 32, 64, 48, 40, 36]
        assert found.first_fail == 40


async def test_knee_search_gives_none_when_nothing_passes() -> None:
    async def try_rate(rate: float) -> bool:
        return False

    found = await find_knee(try_rate, lambda ok: ok, start=4, max_rate=64)
    assert found.knee is None
    assert [rate for rate, _, _ in found.steps] == [4, 2, 1, 0.5]


def _event(event_id: int, kind: str, seconds: int = 0, **attrs: object) -> HistoryEvent:
    event = HistoryEvent(
        event_id=event_id,
        event_type=EventType.Value(f"EVENT_TYPE_{kind}"),
        event_time=Timestamp(seconds=1_700_000_000 + seconds),
        **attrs,  # type: ignore[arg-type]
    )
    return event


def _marker(event_id: int, task: int, name: str = "core_local_activity") -> HistoryEvent:
    attrs = MarkerRecordedEventAttributes(marker_name=name, workflow_task_completed_event_id=task)
    return _event(event_id, "MARKER_RECORDED", marker_recorded_event_attributes=attrs)


def _upsert(event_id: int, *names: str) -> HistoryEvent:
    fields = {name: Payload(data=b'"x"') for name in names}
    attrs = UpsertWorkflowSearchAttributesEventAttributes(
        search_attributes=SearchAttributes(indexed_fields=fields)
    )
    return _event(
        event_id,
        "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
        upsert_workflow_search_attributes_event_attributes=attrs,
    )


def test_billable_actions_follow_temporal_clouds_rules() -> None:
    events = [
        _event(1, "WORKFLOW_EXECUTION_STARTED"),
        _event(2, "WORKFLOW_TASK_SCHEDULED"),
        _event(3, "WORKFLOW_TASK_STARTED"),
        _event(4, "WORKFLOW_TASK_COMPLETED"),
        _marker(5, 4),
        _marker(6, 4),  # two local activities in one workflow task: one action
        _upsert(7, "FiflowStatus"),
        _upsert(8, "TemporalChangeVersion"),  # exempt
        _event(9, "ACTIVITY_TASK_SCHEDULED"),
        _event(
            10,
            "ACTIVITY_TASK_STARTED",
            activity_task_started_event_attributes=ActivityTaskStartedEventAttributes(attempt=3),
        ),
        _event(11, "ACTIVITY_TASK_COMPLETED"),
        _event(12, "WORKFLOW_TASK_COMPLETED"),
        _marker(13, 12),
        _event(14, "TIMER_STARTED"),
        _event(15, "WORKFLOW_EXECUTION_SIGNALED"),
        _event(16, "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED"),  # billed where received
        _event(17, "START_CHILD_WORKFLOW_EXECUTION_INITIATED"),
        _event(18, "WORKFLOW_EXECUTION_COMPLETED"),
    ]
    billable = accounting.billable_actions(events)
    assert billable == {
        "workflow started": 1,
        "local activities (per workflow task)": 2,
        "search attributes upserted": 1,
        "activity started": 1,
        "activity retried": 2,
        "timer started": 1,
        "signal received": 1,
        "child workflow (start + execution)": 2,
    }
    figures = accounting.per_flow(*accounting.count_history(events), flows=1)
    assert figures["events"] == 18
    assert figures["billable"] == 11
    assert figures["by_event"]["MarkerRecorded"] == 3


def test_a_patch_marker_is_free_and_a_task_with_only_one_bills_nothing() -> None:
    events = [
        _event(1, "WORKFLOW_EXECUTION_STARTED"),
        _event(4, "WORKFLOW_TASK_COMPLETED"),
        _marker(5, 4, name="core_patch"),  # workflow.patched: not a local activity
        _upsert(6, "TemporalChangeVersion"),
        _event(8, "WORKFLOW_TASK_COMPLETED"),
        _marker(9, 8, name="core_patch"),
        _marker(10, 8),  # a local activity in the same task: that task bills one
    ]
    assert accounting.billable_actions(events) == {
        "workflow started": 1,
        "local activities (per workflow task)": 1,
    }


def test_signal_with_start_is_one_action() -> None:
    events = [
        _event(1, "WORKFLOW_EXECUTION_STARTED"),
        _event(2, "WORKFLOW_EXECUTION_SIGNALED"),
        _event(3, "WORKFLOW_TASK_SCHEDULED"),
        _event(9, "WORKFLOW_EXECUTION_SIGNALED"),
    ]
    assert accounting.billable_actions(events) == {"signal-with-start": 1, "signal received": 1}


def test_a_window_counts_only_the_events_inside_it() -> None:
    from datetime import UTC, datetime

    events = [_event(i, "WORKFLOW_EXECUTION_SIGNALED", seconds=i * 10) for i in range(3, 8)]
    start = datetime.fromtimestamp(1_700_000_000 + 40, UTC)
    end = datetime.fromtimestamp(1_700_000_000 + 60, UTC)
    counts, billable = accounting.count_history(events, (start, end))
    assert counts == {"WorkflowExecutionSignaled": 3}
    assert billable == {"signal received": 3}


STAT = (
    "4242 (temporal (dev) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
    "250 50 7 3 20 0 12 0 100 1000000 500 18446744073709551615"
)


def test_proc_stat_parsing_reads_ppid_and_all_cpu_ticks() -> None:
    # utime 250 + stime 50 + cutime 7 + cstime 3; the name has spaces and parentheses.
    assert measure.parse_stat(STAT) == (1, 310)


def _fake_proc(tmp_path: Path, stats: dict[int, tuple[int, int]]) -> Path:
    for pid, (ppid, ticks) in stats.items():
        (tmp_path / str(pid)).mkdir()
        line = f"{pid} (p) S {ppid} 0 0 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0 0 0 0 0"
        (tmp_path / str(pid) / "stat").write_text(line)
    (tmp_path / "self").mkdir()  # not a pid: ignored
    return tmp_path


def test_cpu_of_a_process_includes_its_descendants(tmp_path: Path) -> None:
    proc = _fake_proc(tmp_path, {10: (1, 100), 11: (10, 50), 12: (11, 25), 20: (1, 999)})
    table = measure.process_table(proc)
    assert measure.tree_ticks(10, table) == 175
    assert measure.tree_ticks(99, table) is None


def test_cpu_delta_leaves_out_processes_that_restarted_or_vanished() -> None:
    before = measure.CpuSnapshot({"temporal": 10.0, "api": 5.0, "worker-1": 3.0})
    after = measure.CpuSnapshot({"temporal": 12.5, "api": 1.0})
    assert measure.cpu_delta(before, after) == {"temporal": 2.5}


def test_stack_processes_come_from_the_status_file() -> None:
    status = {
        "pid": 1,
        "parts": [
            {"name": "temporal", "pid": 100, "state": "running"},
            {"name": "worker-1", "pid": 101, "state": "running"},
            {"name": "worker-2", "pid": None, "state": "restarting"},
        ],
    }
    processes = measure.stack_processes(status)
    assert processes == {"temporal": 100, "worker-1": 101}
    assert measure.worker_count(["temporal", "worker-1", "worker-2"]) == 2


def _write_status(state_dir: Path, pid: int, started: int | None, part_started: int | None) -> None:
    parts = [{"name": "worker-1", "pid": pid, "proc_start": part_started, "state": "running"}]
    status = {"pid": pid, "proc_start": started, "parts": parts}
    (state_dir / "status.json").write_text(json.dumps(status))


def test_stack_status_names_a_process_by_pid_and_start_time(tmp_path: Path) -> None:
    me = os.getpid()
    started = process_start(me)
    assert started is not None  # Linux: /proc is there
    _write_status(tmp_path, me, started, started)
    status = measure.read_stack_status(tmp_path)
    assert status is not None
    assert measure.stack_processes(status) == {"worker-1": me}

    # The same pid with another start time: a reused pid, not the process recorded.
    _write_status(tmp_path, me, started, started + 1)
    status = measure.read_stack_status(tmp_path)
    assert status is not None
    assert status["parts"][0]["state"] == "stopped"
    assert measure.stack_processes(status) == {}

    # The supervisor itself replaced: no stack runs there.
    _write_status(tmp_path, me, started + 1, started)
    assert measure.read_stack_status(tmp_path) is None
    assert measure.read_stack_status(tmp_path / "nowhere") is None


def test_cpu_lists_parse_like_taskset() -> None:
    assert measure.parse_cpu_list("0-2,5") == {0, 1, 2, 5}
    with pytest.raises(ValueError):
        measure.parse_cpu_list(" ")


def test_targets_compare_the_alert_with_the_floor() -> None:
    summary = {
        "floor": {
            "knee": {"rate": 40.0},
            "knee_step": {"throughput_per_s": 40.0, "cpu_per_flow_s": {"all": 0.02}},
            "accounting": {"billable": 3.0},
        },
        "alert": {
            "knee": {"rate": 20.0},
            "knee_step": {"throughput_per_s": 20.0, "cpu_per_flow_s": {"all": 0.05}},
            "half_knee": {
                "latency": {
                    "post_to_sms_recorded": {"p99_ms": 200.0},
                    "reply_to_fraud_recorded": {"p99_ms": 350.0},
                }
            },
            "accounting": {"confirmed": {"events": 18}, "billable_per_confirmed_alert": 9.0},
        },
    }
    ratios, targets = report.ratios_and_targets(summary)
    assert ratios["throughput_alert_over_floor"] == 0.5
    assert ratios["cpu_per_flow_alert_over_floor"] == 2.5
    verdicts = {t["name"]: t["ok"] for t in targets}
    assert verdicts == {
        "alert throughput at knee / floor throughput at knee": False,
        "half knee: POST->SMS p99 (ms)": True,
        "half knee: reply->fraud p99 (ms)": False,
        "history events, confirmed alert": True,
        "billable actions, confirmed alert + conversation share": False,
        "CPU per alert / floor CPU per flow (all stack processes)": False,
    }
    # The table renders from the same summary without a stack.
    assert "target: history events" in report.render_table(
        report.table_rows(summary) + report.target_rows({"targets": targets}),
        ("figure", "floor", "alert", "alert/floor"),
    )


def test_scale_out_compares_throughput_and_worker_capacity() -> None:
    def run(workers: int, throughput: float, worker_cpu: float) -> dict[str, object]:
        per = {f"worker-{i + 1}": worker_cpu / workers for i in range(workers)}
        return {
            "stack": {"workers": workers},
            "alert": {"knee_step": {"throughput_per_s": throughput, "cpu_per_flow_s": per}},
        }

    result = scaleout.compare(run(1, 10.0, 0.05), run(2, 19.0, 0.055))
    assert result["measured_ratio"] == 1.9
    assert result["measured_ok"] is True
    # Each worker a core of its own: 1/0.05 = 20/s, 2/0.055 = 36.4/s.
    assert result["server_share_subtracted_ratio"] == pytest.approx(1.818, abs=0.001)
