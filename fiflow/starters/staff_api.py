"""What the staff commands share: the API address and key, calls, exit codes, time display.

The staff commands (`fiflow review|alerts|rules|metrics ...`) only ever call the HTTP API,
with the person's own staff key, so what they may do is exactly what the API allows them.
They exit through `typer.Exit` (no Temporal runtime is loaded in these processes).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, NoReturn, ParamSpec, TypeVar

import httpx
import typer
from rich.console import Console

OK, REFUSED, USAGE, UNAVAILABLE, NOT_SETTLED, INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_CODES = (
    "Exit codes: 0 done; 1 refused or not found by the API (4xx), or not confirmed; "
    "2 usage error; 3 API unreachable or failing (5xx); 130 interrupted (Ctrl-C)."
)
API_URL_ENV = "FIFLOW_API_URL"
STAFF_KEY_ENV = "FIFLOW_STAFF_KEY"
DEFAULT_API = "http://127.0.0.1:8000"
PAGE_LIMIT = 50

API_OPTION = typer.Option(
    DEFAULT_API, "--api", envvar=API_URL_ENV, help="The fiflow API's base URL.", show_envvar=True
)


def key_option(local_default: str) -> Any:
    """Your own staff key (`person:role=key` in FIFLOW_STAFF_KEYS); the local stack's by default."""
    return typer.Option(
        local_default,
        "--key",
        envvar=STAFF_KEY_ENV,
        show_envvar=True,
        show_default=False,
        help=f"Your staff key (default: the local stack's {local_default}).",
    )


JSON_OPTION = typer.Option(False, "--json", help="Print the API's JSON instead of a table.")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

P = ParamSpec("P")
R = TypeVar("R")


def interruptible(command: Callable[P, R]) -> Callable[P, R]:
    """Ctrl-C ends the command with exit code 130 and one line, never a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(INTERRUPTED) from None

    return run


def stop(message: str, code: int) -> NoReturn:
    """Print `fiflow: message` to stderr and exit with `code`."""
    err.print(f"fiflow: {message}", markup=False)
    raise typer.Exit(code)


class StaffApi:
    """Calls to the fiflow API as one staff person; an error answer ends the command."""

    def __init__(self, base_url: str, key: str, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers={"X-API-Key": key}, timeout=timeout
        )

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        accept: tuple[int, ...] = (),
    ) -> httpx.Response:
        """The response of a 2xx (or a status in `accept`); exits 1 on a 4xx, 3 on a 5xx."""
        kept = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(
                method, path, json=body, params=kept or None, headers=headers
            )
        except httpx.HTTPError as exc:
            stop(f"cannot reach the API at {self.base_url}: {exc}", UNAVAILABLE)
        if response.is_success or response.status_code in accept:
            return response
        stop(describe_error(response), REFUSED if response.status_code < 500 else UNAVAILABLE)

    def get(self, path: str, **params: Any) -> Any:
        """GET `path` and return its JSON."""
        return self.call("GET", path, params=params).json()

    def pages(self, path: str, params: dict[str, Any], every: bool) -> Iterator[dict[str, Any]]:
        """Items of a paged list (`items`, `next_page_token`): one page, or all with `every`."""
        token = None
        while True:
            page = self.call("GET", path, params={**params, "page_token": token}).json()
            yield from page["items"]
            token = page.get("next_page_token")
            if not token:
                return
            if not every:
                err.print("more on the next page: add --all to list every one")
                return


def describe_error(response: httpx.Response) -> str:
    """`status code: message` from the API's error body, whatever shape it came in."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if isinstance(body, dict) and "code" in body:
        return f"{response.status_code} {body['code']}: {body.get('message', '')}"
    return f"HTTP {response.status_code}: {json.dumps(body)[:200]}"


def print_json(data: Any) -> None:
    """The API's JSON, indented, for scripts (`--json`)."""
    typer.echo(json.dumps(data, indent=2))


def parse_time(value: str | None) -> datetime | None:
    """An ISO-8601 timestamp from the API (Z or offset), in UTC."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def short_time(value: str | None) -> str:
    """`2026-01-05 12:00` (UTC), or `-`."""
    parsed = parse_time(value)
    return parsed.strftime("%Y-%m-%d %H:%M") if parsed else "-"


def duration(seconds: float) -> str:
    """`2d 3h`, `3h 05m`, `4m` for a span of time."""
    minutes = int(abs(seconds) // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins:02d}m"
    return f"{mins}m"


def time_left(due: str | None, now: datetime | None = None) -> str:
    """Rich markup for what is left until `due`: red once overdue, yellow within 4 hours."""
    due_at = parse_time(due)
    if due_at is None:
        return "-"
    left = (due_at - (now or datetime.now(UTC))).total_seconds()
    if left < 0:
        return f"[bold red]overdue {duration(left)}[/]"
    return f"[yellow]{duration(left)}[/]" if left < 4 * 3600 else duration(left)
