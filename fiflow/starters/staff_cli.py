"""Staff commands: `fiflow review ...`, `fiflow alerts list|show`, `fiflow metrics summary`.

Each is a call to the HTTP API with the person's own staff key (see staff_api.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table

from fiflow.starters.staff_api import (
    API_OPTION,
    EXIT_CODES,
    JSON_OPTION,
    NOT_SETTLED,
    PAGE_LIMIT,
    StaffApi,
    duration,
    err,
    interruptible,
    key_option,
    out,
    parse_time,
    print_json,
    short_time,
    stop,
    time_left,
)

review_app = typer.Typer(
    help="The credit review queue: list, read and decide referred applications.",
    no_args_is_help=True,
)
metrics_app = typer.Typer(help="Business metrics (through the HTTP API).", no_args_is_help=True)

REVIEWER_KEY = "local-reviewer-1-key"
ADMIN_KEY = "local-admin-1-key"
DECISIONS = {"approve": "approve", "decline": "decline", "request-info": "request_info"}
ALERT_FINAL = {"confirmed", "contested", "no_response", "no_channel"}
NOTICE_FINAL = {"sent", "skipped_opted_out", "no_channel", "failed"}
# `alerts list` lists notices beside fraud alerts; their IDs say which is which.
NOTICE_PREFIX = "nt-"


# --- review -----------------------------------------------------------------------------------


@review_app.command("list")
@interruptible
def review_list(
    every: bool = typer.Option(False, "--all", help="Page through the whole queue."),
    limit: int = typer.Option(PAGE_LIMIT, min=1, max=500, help="Applications per page."),
    as_json: bool = JSON_OPTION,
    api: str = API_OPTION,
    key: str = key_option(REVIEWER_KEY),
) -> None:
    """Applications waiting for a manager's review, oldest first, with the time left to decide.

    Exit codes: 0 done; 1 refused by the API (4xx); 2 usage error; 3 API unreachable or
    failing (5xx); 130 interrupted (Ctrl-C).
    """
    params = {"state": "awaiting_review", "limit": limit}
    items = _read_list(
        StaffApi(api, key),
        "/v1/credit-applications",
        params,
        every,
        "reading the review queue…",
    )
    items.sort(key=lambda i: parse_time(i.get("submitted_at")) or datetime.max.replace(tzinfo=UTC))
    now = datetime.now(UTC)
    _print_list(
        items,
        as_json,
        f"Awaiting review: {len(items)}",
        ("application", "product", "submitted", "review due", "time left", "run"),
        lambda item: (
            item["application_id"],
            str(item.get("product") or "-"),
            short_time(item.get("submitted_at")),
            short_time(item.get("review_due_at")),
            time_left(item.get("review_due_at"), now),
            _run_status(item),
        ),
    )


def _read_list(
    client: StaffApi, path: str, params: dict[str, Any], every: bool, reading: str
) -> list[dict[str, Any]]:
    """One page of a staff list (every page with `every`), with a spinner while it reads."""
    with err.status(reading):
        return list(client.pages(path, params, every))


def _print_list(
    items: list[dict[str, Any]],
    as_json: bool,
    title: str,
    columns: tuple[str, ...],
    row: Callable[[dict[str, Any]], tuple[str, ...]],
) -> None:
    """A list as the API's JSON, or as a table of one row per item."""
    if as_json:
        print_json(items)
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, no_wrap=True)
    for item in items:
        table.add_row(*row(item))
    out.print(table)


def _run_status(item: dict[str, Any]) -> str:
    return str(item.get("run_status") or "-").lower()


def _panel(
    view: dict[str, Any],
    id_key: str,
    rows: Callable[[dict[str, Any]], Iterator[tuple[str, str]]],
) -> Panel:
    """A run's summary panel: its run status, then `rows` of its status (once it answered)."""
    status = view.get("status")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("run", str(view.get("run_status", "-")).lower())
    if status is None:
        grid.add_row("state", "starting (the run has not answered yet)")
    else:
        for label, value in rows(status):
            grid.add_row(label, value)
    return Panel(grid, title=view[id_key], title_align="left")


@review_app.command("show")
@interruptible
def review_show(
    application_id: str,
    as_json: bool = JSON_OPTION,
    api: str = API_OPTION,
    key: str = key_option(REVIEWER_KEY),
) -> None:
    """An application's summary: amount, checks, the rules' decision and reasons, reviews.

    Exit codes: 0 done; 1 not found or refused by the API (4xx); 2 usage error; 3 API
    unreachable or failing (5xx); 130 interrupted (Ctrl-C).
    """
    view = StaffApi(api, key).get(f"/v1/credit-applications/{application_id}")
    if as_json:
        print_json(view)
        return
    out.print(application_panel(view))


def application_panel(view: dict[str, Any]) -> Panel:
    """The review summary of an application as a panel."""
    return _panel(view, "application_id", _application_rows)


def _application_rows(status: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield "state", status["state"]
    yield "customer", status["customer_id"]
    yield "product", status["product"]
    yield "requested", str(status["requested_amount"])
    for child in ("credit_check", "account_history"):
        yield child.replace("_", " "), status[child]["state"]
    credit = status.get("credit_result") or {}
    if credit.get("score") is not None:
        yield "score", str(credit["score"])
    rules = status.get("rules_decision")
    if rules:
        reasons = ", ".join(rules.get("reasons") or []) or "-"
        yield "rules", f"{rules['outcome']} ({reasons})"
    for review in status.get("reviews") or []:
        note = f": {review['note']}" if review.get("note") else ""
        yield "review", f"{review['decision']} by {review['reviewer_id']}{note}"
    decision = status.get("decision")
    if decision:
        amount = decision.get("approved_amount")
        yield (
            "decision",
            f"{decision['outcome']} by {decision['decided_by']}"
            + (f", amount {amount}" if amount else ""),
        )
    referred = (status.get("timings") or {}).get("referred")
    if referred:
        yield "referred", short_time(referred)


@review_app.command("decide")
@interruptible
def review_decide(
    application_id: str,
    decision: str = typer.Argument(..., help="approve, decline or request-info."),
    amount: str | None = typer.Option(None, help="Approve this (lower) amount, e.g. 4000.00."),
    note: str = typer.Option("", help="Why; for request-info, what the applicant should send."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    idempotency_key: str | None = typer.Option(
        None, help="Repeat a decision safely: the same key is the same decision."
    ),
    api: str = API_OPTION,
    key: str = key_option(REVIEWER_KEY),
) -> None:
    """Decide a referred application as yourself (the person whose staff key this is).

    Exit codes: 0 decided; 1 refused by the API (4xx: not awaiting review, not found, not a
    reviewer) or not confirmed; 2 usage error; 3 API unreachable or failing (5xx); 130
    interrupted (Ctrl-C).
    """
    chosen = DECISIONS.get(decision)
    if chosen is None:
        raise typer.BadParameter(
            f"{decision!r} is not one of {', '.join(DECISIONS)}", param_hint="DECISION"
        )
    body: dict[str, Any] = {"decision": chosen, "note": note}
    if amount is not None:
        if chosen != "approve":
            raise typer.BadParameter("only an approval takes an amount", param_hint="--amount")
        try:
            body["approved_amount"] = str(Decimal(amount).quantize(Decimal("0.01")))
        except InvalidOperation:
            raise typer.BadParameter(
                f"{amount!r} is not an amount", param_hint="--amount"
            ) from None
    client = StaffApi(api, key)
    view = client.get(f"/v1/credit-applications/{application_id}")
    out.print(application_panel(view))
    if not yes:
        what = decision + (f" for {body['approved_amount']}" if amount is not None else "")
        if not typer.confirm(f"{what} application {application_id}?", default=False):
            stop("nothing decided", 1)
    headers = {"Idempotency-Key": idempotency_key or f"cli-{uuid.uuid4().hex}"}
    result = client.call(
        "POST", f"/v1/credit-applications/{application_id}/review", body=body, headers=headers
    ).json()
    out.print(f"{application_id}: {chosen} recorded; the application is now {result['state']}")


# --- alerts -----------------------------------------------------------------------------------


def alerts_list(
    kind: str | None = typer.Option(
        None, help="fraud_alert or notice (default: both, informational notices too)."
    ),
    state: str | None = typer.Option(
        None, help="e.g. awaiting_reply, escalated, confirmed; for notices sent, failed…"
    ),
    alert_type: str | None = typer.Option(None, "--type", help="e.g. card_fraud_suspected."),
    channel: str | None = typer.Option(None, help="sms, push, voice…"),
    since: str | None = typer.Option(None, "--from", help="Started at or after (ISO 8601)."),
    until: str | None = typer.Option(None, "--to", help="Started before (ISO 8601)."),
    every: bool = typer.Option(False, "--all", help="Page through every match."),
    limit: int = typer.Option(PAGE_LIMIT, min=1, max=500, help="Alerts per page."),
    as_json: bool = JSON_OPTION,
    api: str = API_OPTION,
    key: str = key_option(REVIEWER_KEY),
) -> None:
    """Alerts and notices, newest first as the API lists them, filtered by kind, state, type,
    channel and time.

    Exit codes: 0 done; 1 refused by the API (4xx); 2 usage error; 3 API unreachable or
    failing (5xx); 130 interrupted (Ctrl-C).
    """
    params = {
        "kind": kind,
        "state": state,
        "type": alert_type,
        "channel": channel,
        "from": since,
        "to": until,
        "limit": limit,
    }
    items = _read_list(StaffApi(api, key), "/v1/alerts", params, every, "reading alerts…")
    _print_list(
        items,
        as_json,
        f"Alerts: {len(items)}",
        ("alert", "kind", "type", "state", "channel", "started", "run"),
        lambda item: (
            item["alert_id"],
            str(item.get("kind") or "-").replace("_", " "),
            item.get("alert_type") or "-",
            item.get("state") or "-",
            item.get("channel") or "-",
            short_time(item.get("started_at")),
            _run_status(item),
        ),
    )


def alerts_show(
    alert_id: str,
    follow: bool = typer.Option(
        False, "--follow", help="Keep reading until the alert reaches a final state."
    ),
    interval: float = typer.Option(1.0, min=0.1, help="Seconds between reads with --follow."),
    timeout: float = typer.Option(
        0, min=0, help="With --follow: give up after this many seconds (0: never)."
    ),
    as_json: bool = JSON_OPTION,
    api: str = API_OPTION,
    key: str = typer.Option(
        "local-system-key",
        "--key",
        "--api-key",
        envvar=["FIFLOW_STAFF_KEY", "FIFLOW_API_KEY"],
        show_envvar=True,
        help="A staff key (or a system key): any role may read an alert.",
    ),
) -> None:
    """An alert's state, channel, reply, decision and actions; --follow until it is final.

    A notice's ID (nt-..., as `alerts list --kind notice` shows) reads the notice: its
    status, channel and send attempts.

    Exit codes: 0 done (with --follow: the alert is final); 1 not found or refused by the API
    (4xx); 2 usage error; 3 API unreachable or failing (5xx); 4 not final at --timeout; 130
    interrupted (Ctrl-C).
    """
    client = StaffApi(api, key)
    notice = alert_id.startswith(NOTICE_PREFIX)
    path = f"/v1/notices/{alert_id}" if notice else f"/v1/alerts/{alert_id}"
    panel = notice_panel if notice else alert_panel
    view = client.get(path)
    if not follow:
        print_json(view) if as_json else out.print(panel(view))
        return
    deadline = time.monotonic() + timeout if timeout else None
    started = time.monotonic()
    last = None
    with Live(console=out, transient=True, refresh_per_second=8) as live:
        while True:
            state = _alert_state(view)
            if state != last:
                # One line per change stays on screen (and in a log) above the live panel.
                out.print(f"{datetime.now(UTC):%H:%M:%S}  {alert_id}  {state}", markup=False)
                last = state
            if _alert_final(view):
                break
            if deadline is not None and time.monotonic() > deadline:
                live.stop()
                out.print(panel(view))
                stop(f"{alert_id} is still {state} after {timeout:g}s", NOT_SETTLED)
            waited = duration(time.monotonic() - started)
            live.update(
                Group(panel(view), Spinner("dots", text=f" waiting for a final state, {waited}"))
            )
            time.sleep(interval)
            view = client.get(path)
    print_json(view) if as_json else out.print(panel(view))


def _alert_state(view: dict[str, Any]) -> str:
    status = view.get("status")
    if not status:
        return "starting"
    # A fraud alert's `state`, a notice's `status`.
    return str(status["state"] if "state" in status else status["status"])


def _alert_final(view: dict[str, Any]) -> bool:
    # A run that ended without a final state (failed, terminated) will not move any more.
    final = ALERT_FINAL if "alert_id" in view else NOTICE_FINAL
    return _alert_state(view) in final or str(view.get("run_status")).lower() not in (
        "running",
        "none",
    )


def alert_panel(view: dict[str, Any]) -> Panel:
    """An alert's state, channel, reply, decision and actions as a panel."""
    return _panel(view, "alert_id", _alert_rows)


def notice_panel(view: dict[str, Any]) -> Panel:
    """A notice's status, channel, reasons and send attempts as a panel."""
    return _panel(view, "notice_id", _notice_rows)


def _notice_rows(status: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield "status", status["status"]
    yield "type", status["alert_type"]
    yield "customer", status["customer_id"]
    yield "channel", status.get("channel") or "-"
    if status.get("reasons"):
        yield "reasons", ", ".join(status["reasons"])
    yield "items", str(status.get("items", 1))
    for attempt in status.get("attempts") or []:
        detail = f" ({attempt['detail']})" if attempt.get("detail") else ""
        yield "attempt", f"{attempt['step']}: {attempt['outcome']}{detail}"
    if status.get("path"):
        yield "path", " → ".join(status["path"])


def _alert_rows(status: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield "state", status["state"]
    yield "type", status["alert_type"]
    yield "customer", status["customer_id"]
    yield "channel", status.get("channel") or "-"
    if status.get("channels_used"):
        yield "channels used", ", ".join(status["channels_used"])
    reply = status.get("reply")
    if reply:
        yield "reply", f"{reply.get('outcome', '-')} via {reply.get('channel', '-')}"
    if status.get("outcome"):
        yield "outcome", status["outcome"]
    for action in status.get("actions") or []:
        detail = f" ({action['detail']})" if action.get("detail") else ""
        # An API from before the audit records shared one shape answers only the v1 names.
        step = action.get("step") or action.get("action", "-")
        outcome = action.get("outcome") or action.get("status", "-")
        yield "action", f"{step}: {outcome}{detail}"
    if status.get("path"):
        yield "path", " → ".join(status["path"])


def register_alert_commands(alerts_app: typer.Typer) -> None:
    """Add `list` and `show` to the `fiflow alerts` group (beside `send`)."""
    alerts_app.command("list")(interruptible(alerts_list))
    alerts_app.command("show")(interruptible(alerts_show))


# --- metrics ----------------------------------------------------------------------------------


@metrics_app.command("summary")
@interruptible
def metrics_summary(
    period: str = typer.Option("day", help="day or hour: the width of each row."),
    since: str | None = typer.Option(None, "--from", help="From (ISO 8601 date or time)."),
    until: str | None = typer.Option(None, "--to", help="To (ISO 8601 date or time)."),
    metric: list[str] = typer.Option([], help="Only this metric (repeatable)."),
    as_json: bool = JSON_OPTION,
    api: str = API_OPTION,
    key: str = key_option(ADMIN_KEY),
) -> None:
    """Counts, sums and percentiles per period: one table per metric.

    Exit codes: 0 done; 1 refused by the API (4xx); 2 usage error; 3 API unreachable or
    failing (5xx); 130 interrupted (Ctrl-C).
    """
    if period not in ("day", "hour"):
        raise typer.BadParameter("must be day or hour", param_hint="--period")
    client = StaffApi(api, key)
    with err.status("reading metrics…"):
        summary = client.get("/v1/metrics/summary", period=period, **{"from": since, "to": until})
    series = [s for s in summary["series"] if not metric or s["metric"] in metric]
    if as_json:
        print_json({**summary, "series": series})
        return
    out.print(f"{summary['period']}ly from {summary['from']} to {summary['to']}")
    if not series:
        out.print("no data" + (f" for {', '.join(metric)}" if metric else ""))
        return
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for entry in series:
        by_metric.setdefault(entry["metric"], []).append(entry)
    for name, entries in by_metric.items():
        table = Table(title=name, title_justify="left")
        table.add_column("period start", no_wrap=True)
        table.add_column("labels")
        for column in ("count", "sum", "p50", "p95"):
            table.add_column(column, justify="right", no_wrap=True)
        rows = [
            (point["start"], entry.get("labels") or {}, point)
            for entry in entries
            for point in entry["points"]
        ]
        rows.sort(key=lambda row: (row[0], sorted(row[1].items())))
        for start, labels, point in rows:
            table.add_row(
                short_time(start) if period == "hour" else str(start)[:10],
                " ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-",
                *(_number(point.get(column)) for column in ("count", "sum", "p50", "p95")),
            )
        out.print(table)


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}" if isinstance(value, int | float) else str(value)


__all__ = ["EXIT_CODES", "metrics_app", "register_alert_commands", "review_app"]
