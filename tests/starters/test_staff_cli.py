"""The staff commands (`fiflow rules|review|alerts|metrics ...`) through typer's CliRunner.

Rules and metrics: against the real API app (its endpoints, authentication, database and rule
files) served over real HTTP by uvicorn. Table rendering, ordering and paging of `review list`
and `alerts list` (and metrics values the store would not produce) run against a minimal HTTP
server answering the documented shapes; the real list endpoints read Temporal's visibility, so
tests/e2e/test_staff_cli_e2e.py runs those commands against them on the stack, with review
decisions and `alerts show --follow` on real runs.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import uvicorn
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from temporalio.client import Client
from typer.testing import CliRunner

from fiflow.integrations.database import upgrade_database
from fiflow.integrations.settings import Settings
from fiflow.starters import staff_api
from fiflow.starters.api.app import create_app
from fiflow.starters.cli import app as cli_app

ADMIN_1, ADMIN_2, REVIEWER = "local-admin-1-key", "local-admin-2-key", "local-reviewer-1-key"
RULES_DIR = Path(__file__).resolve().parents[2] / "fiflow" / "rules"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(app: Any) -> Iterator[str]:
    """Serve `app` on a free port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def fiflow(*args: str, key: str | None = None, input: str | None = None) -> Any:
    """Run `fiflow args...` in this process; wide enough that tables never wrap."""
    env = {"COLUMNS": "200", "FIFLOW_STAFF_KEY": key} if key else {"COLUMNS": "200"}
    return CliRunner().invoke(cli_app, list(args), env=env, input=input)


# --- rules, against the real API ------------------------------------------------------------


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'fiflow.db'}"
    upgrade_database(url)
    return url


@pytest.fixture(scope="module")
def api(db_url: str) -> Iterator[str]:
    url = db_url
    # The rules endpoints reach no Temporal: a placeholder client is never called.
    yield from serve(create_app(Settings(database_url=url), client=cast(Client, object())))


def rule_file(tmp_path: Path, name: str, version: str) -> Path:
    document = yaml.safe_load((RULES_DIR / f"{name}.yaml").read_text())
    document["version"] = version
    path = tmp_path / f"{name}-{version}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_rules_list_shows_each_rule_set_with_its_versions(api: str) -> None:
    result = fiflow("rules", "list", "--api", api, key=ADMIN_1)
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert {"alerts", "credit", "triggers", "conditions"} <= set(rows)
    assert "2026.11.1" in rows["credit"] and "yes" in rows["credit"]  # four eyes
    assert " no " in rows["triggers"]

    as_json = fiflow("rules", "list", "--json", "--api", api, key=ADMIN_1)
    names = {s["name"] for s in yaml.safe_load(as_json.stdout)}
    assert names == {"alerts", "credit", "triggers", "conditions"}


def test_activate_a_file_diff_the_versions_then_roll_back(api: str, tmp_path: Path) -> None:
    new = rule_file(tmp_path, "triggers", "2026.12.9")
    said_no = fiflow(
        "rules", "activate", "triggers", "2026.12.9", "--file", str(new), "--api", api,
        key=ADMIN_1, input="n\n",
    )  # fmt: skip
    assert said_no.exit_code == 1 and "nothing activated" in said_no.stderr
    activated = fiflow(
        "rules", "activate", "triggers", "2026.12.9", "--file", str(new), "--yes", "--api", api,
        key=ADMIN_1,
    )  # fmt: skip
    assert activated.exit_code == 0, activated.output
    assert "triggers 2026.12.9 is active" in activated.stdout

    diff = fiflow("rules", "diff", "triggers", "2026.11.1", "2026.12.9", "--api", api, key=ADMIN_1)
    assert diff.exit_code == 0, diff.output
    lines = diff.stdout.splitlines()
    assert (
        lines[0] == "--- triggers 2026.11.1 (file)" and lines[1] == "+++ triggers 2026.12.9 (api)"
    )
    assert "-version: 2026.11.1" in lines and "+version: 2026.12.9" in lines
    changed = [line for line in lines[2:] if line[:1] in "+-"]
    assert len(changed) == 2

    # Back to the file's version: the API already knows its document.
    rolled_back = fiflow(
        "rules", "activate", "triggers", "2026.11.1", "-y", "--api", api, key=ADMIN_1
    )
    assert rolled_back.exit_code == 0, rolled_back.output
    assert "triggers 2026.11.1 is active" in rolled_back.stdout
    again = fiflow("rules", "activate", "triggers", "2026.11.1", "-y", "--api", api, key=ADMIN_1)
    assert "already the active version" in again.stdout

    unknown = fiflow("rules", "diff", "triggers", "2026.11.1", "0.0.0", "--api", api, key=ADMIN_1)
    assert unknown.exit_code == 1 and "404 unknown_version" in unknown.stderr


def test_a_four_eyes_activation_shows_pending_until_a_second_admin_approves(
    api: str, tmp_path: Path
) -> None:
    new = rule_file(tmp_path, "credit", "2026.12.9")
    asked = fiflow(
        "rules", "activate", "credit", "2026.12.9", "--file", str(new), "-y", "--api", api,
        key=ADMIN_1,
    )  # fmt: skip
    assert asked.exit_code == 0, asked.output
    assert "pending: waiting for a second admin" in asked.stdout
    assert "admin-1" in asked.stdout and "still active  2026.11.1" in asked.stdout

    own = fiflow("rules", "activate", "credit", "2026.12.9", "-y", "--api", api, key=ADMIN_1)
    assert own.exit_code == 1
    assert "another admin must approve" in own.stderr and "pending" in own.stdout

    listed = fiflow("rules", "list", "--api", api, key=ADMIN_1)
    assert "2026.12.9 by admin-1" in listed.stdout

    approved = fiflow("rules", "activate", "credit", "2026.12.9", "-y", "--api", api, key=ADMIN_2)
    assert approved.exit_code == 0, approved.output
    assert "credit 2026.12.9 approved and active (asked by admin-1)" in approved.stdout


def test_rules_refusals_usage_errors_and_an_unreachable_api_have_their_exit_codes(
    api: str, tmp_path: Path
) -> None:
    refused = fiflow("rules", "list", "--api", api, key=REVIEWER)
    assert refused.exit_code == 1 and refused.stderr.startswith("fiflow: 403 ")
    wrong = rule_file(tmp_path, "triggers", "2026.12.10")
    usage = fiflow("rules", "activate", "triggers", "9.9", "--file", str(wrong), "--api", api)
    assert usage.exit_code == 2 and "not '9.9'" in usage.output
    down = fiflow("rules", "list", "--api", f"http://127.0.0.1:{free_port()}", key=ADMIN_1)
    assert down.exit_code == 3 and "cannot reach the API" in down.stderr


def test_ctrl_c_exits_130_without_a_traceback(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: Any, **_kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(staff_api.StaffApi, "get", interrupted)
    result = fiflow("rules", "list", "--api", api, key=ADMIN_1)
    assert result.exit_code == 130 and "interrupted" in result.stderr
    assert "Traceback" not in result.output


def test_every_staff_command_documents_its_exit_codes() -> None:
    for command in (
        ["review", "list"], ["review", "show"], ["review", "decide"], ["alerts", "list"],
        ["alerts", "show"], ["rules", "list"], ["rules", "diff"], ["rules", "activate"],
        ["metrics", "summary"],
    ):  # fmt: skip
        shown = fiflow(*command, "--help")
        assert shown.exit_code == 0
        text = " ".join(shown.stdout.split())
        assert "Exit codes: 0" in text and "3 API unreachable or failing (5xx)" in text, command
        assert "FIFLOW_API_URL" in text, command


# --- the list and metrics endpoints' documented shapes ---------------------------------------

NOW = datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def application(n: int, submitted_hours_ago: float, due_in_hours: float) -> dict[str, Any]:
    # Times relative to the request, not to the import: the suite may run this much later.
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "application_id": f"app-{n}",
        "state": "awaiting_review",
        "product": "credit_card",
        "submitted_at": iso(now - timedelta(hours=submitted_hours_ago)),
        "review_due_at": iso(now + timedelta(hours=due_in_hours)),
        "run_status": "RUNNING",
    }


def queue() -> list[dict[str, Any]]:
    """The review queue the stand-in server answers, as of now."""
    return [
        application(1, 10, 62),
        application(2, 80, -8),
        application(3, 30, 2),
        application(4, 1, 71),
    ]


@pytest.fixture(scope="module")
def shapes() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A server answering the documented list and summary shapes; records each query."""
    seen: list[dict[str, Any]] = []
    app = FastAPI()

    def keyed(request: Request) -> JSONResponse | None:
        seen.append({"path": request.url.path, **request.query_params})
        if request.headers.get("X-API-Key") == "bad-key":
            return JSONResponse({"code": "unauthenticated", "message": "no such key"}, 401)
        if request.headers.get("X-API-Key") == "broken":
            return JSONResponse({"code": "internal", "message": "boom"}, 500)
        return None

    @app.get("/v1/credit-applications")
    async def applications(request: Request) -> Any:
        refused = keyed(request)
        if refused:
            return refused
        start = int(request.query_params.get("page_token") or 0)
        limit = int(request.query_params["limit"])
        items = queue()
        page = items[start : start + limit]
        more = start + limit < len(items)
        return {"items": page, "next_page_token": str(start + limit) if more else None}

    @app.get("/v1/alerts")
    async def alerts(request: Request) -> Any:
        refused = keyed(request)
        if refused:
            return refused
        item = {
            "alert_id": "al-1", "kind": "fraud_alert", "alert_type": "card_fraud_suspected",
            "state": "escalated",
            "channel": "sms", "started_at": iso(NOW), "run_status": "RUNNING",
        }  # fmt: skip
        return {"items": [item], "next_page_token": None}

    @app.get("/v1/alerts/{alert_id}")
    async def alert(alert_id: str, request: Request) -> Any:
        refused = keyed(request)
        if refused:
            return refused
        from fiflow.domain.alerts import ActionRecord, AlertState, AlertStatus

        # Today's API writes the real model; an API from before the audit shape wrote an
        # action with only its v1 names.
        sent = ActionRecord(step="send_sms:alert", outcome="done", detail="sms", at=NOW)
        status = AlertStatus(
            alert_id=alert_id, alert_type="card_fraud_suspected", customer_id="cust-0001",
            state=AlertState.AWAITING_REPLY, actions=[sent],
        ).model_dump(mode="json")  # fmt: skip
        status["actions"].append({"action": "block_card:pre_block", "status": "skipped",
                                  "detail": "", "at": iso(NOW)})  # fmt: skip
        return {"alert_id": alert_id, "run_status": "RUNNING", "status": status}

    @app.get("/v1/metrics/summary")
    async def summary(request: Request) -> Any:
        refused = keyed(request)
        if refused:
            return refused
        q = request.query_params
        day = "2026-01-05T00:00:00Z"
        return {
            "period": q["period"],
            "from": q.get("from") or "2026-01-05",
            "to": q.get("to") or "2026-01-06",
            "series": [
                {
                    "metric": "alerts_started",
                    "labels": {"type": "card_fraud_suspected"},
                    "points": [{"start": day, "count": 12, "sum": None, "p50": None, "p95": None}],
                },
                {
                    "metric": "alert_reply_seconds",
                    "labels": {"channel": "sms"},
                    "points": [
                        {"start": day, "count": 9, "sum": 1234.5, "p50": 61.0, "p95": 290.25}
                    ],
                },
            ],
        }

    for url in serve(app):
        yield url, seen


def table_rows(text: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in re.split("[│┃]", line)[1:-1]]
        for line in text.splitlines()
        if line.startswith(("│", "┃"))
    ]


def test_review_list_pages_through_the_queue_oldest_first_with_time_left(
    shapes: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = shapes
    first = fiflow("review", "list", "--limit", "3", "--api", url)
    assert first.exit_code == 0, first.output
    assert [row[0] for row in table_rows(first.stdout)][1:] == ["app-2", "app-3", "app-1"]
    assert "add --all" in first.stderr
    assert seen[-1] == {"path": "/v1/credit-applications", "state": "awaiting_review", "limit": "3"}

    every = fiflow("review", "list", "--limit", "3", "--all", "--api", url)
    assert every.exit_code == 0, every.output
    rows = table_rows(every.stdout)[1:]
    assert [row[0] for row in rows] == ["app-2", "app-3", "app-1", "app-4"]
    left = {row[0]: row[4] for row in rows}
    assert left["app-2"] == "overdue 8h 00m"
    assert left["app-3"] in ("1h 59m", "2h 00m") and left["app-1"] in ("2d 13h", "2d 14h")
    assert seen[-1]["page_token"] == "3"
    assert "Awaiting review: 4" in every.stdout


def test_alerts_list_passes_its_filters_and_renders_the_table(
    shapes: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = shapes
    result = fiflow(
        "alerts", "list", "--kind", "fraud_alert", "--state", "escalated",
        "--type", "card_fraud_suspected",
        "--channel", "sms", "--from", "2026-01-01", "--to", "2026-01-31", "--api", url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen[-1] == {
        "path": "/v1/alerts", "kind": "fraud_alert", "state": "escalated",
        "type": "card_fraud_suspected",
        "channel": "sms", "from": "2026-01-01", "to": "2026-01-31", "limit": "50",
    }  # fmt: skip
    [header, row] = table_rows(result.stdout)
    assert header[:4] == ["alert", "kind", "type", "state"]
    assert row[:5] == ["al-1", "fraud alert", "card_fraud_suspected", "escalated", "sms"]


def test_alerts_show_renders_actions_in_the_audit_shape_and_the_v1_one(
    shapes: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = shapes
    result = fiflow("alerts", "show", "al-9", "--api", url)
    assert result.exit_code == 0, result.output
    assert seen[-1] == {"path": "/v1/alerts/al-9"}
    lines = [" ".join(line.strip("│ ").split()) for line in result.stdout.splitlines()]
    actions = [line.removeprefix("action ") for line in lines if line.startswith("action ")]
    assert actions == ["send_sms:alert: done (sms)", "block_card:pre_block: skipped"]


def test_metrics_summary_prints_a_table_per_metric(
    shapes: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = shapes
    result = fiflow(
        "metrics", "summary", "--period", "day", "--from", "2026-01-05", "--to", "2026-01-06",
        "--api", url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen[-1] == {
        "path": "/v1/metrics/summary", "period": "day", "from": "2026-01-05", "to": "2026-01-06"
    }  # fmt: skip
    assert "alerts_started" in result.stdout and "alert_reply_seconds" in result.stdout
    rows = table_rows(result.stdout)
    assert ["2026-01-05", "type=card_fraud_suspected", "12", "-", "-", "-"] in rows
    assert ["2026-01-05", "channel=sms", "9", "1,234.50", "61", "290.25"] in rows

    only = fiflow("metrics", "summary", "--metric", "alerts_started", "--api", url)
    assert "alerts_started" in only.stdout and "alert_reply_seconds" not in only.stdout
    bad = fiflow("metrics", "summary", "--period", "week", "--api", url)
    assert bad.exit_code == 2


def test_list_refusals_and_server_errors_exit_1_and_3(
    shapes: tuple[str, list[dict[str, Any]]],
) -> None:
    url, _seen = shapes
    refused = fiflow("review", "list", "--api", url, key="bad-key")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == "fiflow: 401 unauthenticated: no such key"
    broken = fiflow("alerts", "list", "--api", url, key="broken")
    assert broken.exit_code == 3 and "500 internal: boom" in broken.stderr


def test_metrics_summary_against_the_real_api(api: str, db_url: str) -> None:
    from fiflow.domain.metrics import Metric, MetricEvent, PeriodKind
    from fiflow.integrations.database import create_db_engine
    from fiflow.integrations.metrics_store import MetricsStore

    day = datetime(2026, 1, 5, 9, tzinfo=UTC)
    engine = create_db_engine(db_url)
    try:
        store = MetricsStore(engine)
        store.record(
            [
                MetricEvent(
                    key=f"cli-{n}",
                    metric=Metric.ALERTS_STARTED,
                    labels={"type": "card_fraud_suspected", "source": "api", "channel": "sms"},
                    occurred_at=day + timedelta(minutes=n),
                )
                for n in range(3)
            ],
            recorded_at=day,
        )
        store.aggregate([PeriodKind.DAY, PeriodKind.HOUR], now=day + timedelta(days=1))
    finally:
        engine.dispose()
    result = fiflow(
        "metrics", "summary", "--from", "2026-01-05", "--to", "2026-01-05", "--api", api,
        key=ADMIN_1,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "alerts_started" in result.stdout
    labels = "channel=sms source=api type=card_fraud_suspected"
    assert ["2026-01-05", labels, "3", "-", "-", "-"] in table_rows(result.stdout)
    hourly = fiflow(
        "metrics", "summary", "--period", "hour", "--from", "2026-01-05", "--to", "2026-01-05",
        "--metric", "alerts_started", "--api", api, key=REVIEWER,
    )  # fmt: skip
    assert hourly.exit_code == 0, hourly.output
    assert ["2026-01-05 09:00", labels, "3", "-", "-", "-"] in table_rows(hourly.stdout)
    bad = fiflow("metrics", "summary", "--from", "yesterday", "--api", api, key=ADMIN_1)
    assert bad.exit_code == 1 and "422 invalid_request" in bad.stderr
