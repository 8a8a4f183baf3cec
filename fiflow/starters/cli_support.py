"""What every `fiflow` command shares: exiting safely, errors, and calls to the HTTP API."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, NoReturn

import httpx
import typer

API_URL = os.environ.get("FIFLOW_API_URL", "http://127.0.0.1:8000")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `fiflow: message` to stderr and exit with `code`."""
    typer.echo(f"fiflow: {message}", err=True)
    exit_now(code)


def exit_now(code: int) -> NoReturn:
    """Flush and exit without interpreter teardown.

    A process that loaded Temporal's core runtime can abort in PyGILState_Release at exit
    (sdk-python #300).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def api_call(method: str, path: str, key: str, body: Any = None, **params: Any) -> httpx.Response:
    """One request to the fiflow API; an unreachable API is a clear message, not a traceback."""
    try:
        return httpx.request(
            method,
            f"{API_URL}{path}",
            json=body,
            params={k: v for k, v in params.items() if v is not None} or None,
            headers={"X-API-Key": key},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach the API at {API_URL}: {exc}", 1)


def show(response: httpx.Response) -> NoReturn:
    """Print the response as JSON; exit 0 on success, 1 on an error answer."""
    try:
        data = response.json()
    except ValueError:
        data = {"status": response.status_code, "body": response.text[:500]}
    typer.echo(json.dumps(data, indent=2))
    exit_now(0 if response.is_success else 1)
