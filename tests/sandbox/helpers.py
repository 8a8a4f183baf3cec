"""Small request helpers shared by the sandbox tests."""

from __future__ import annotations

from typing import Any

import httpx


async def calls(sandbox: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    """Recorded calls, filtered."""
    response = await sandbox.get("/__sandbox/calls", params=params)
    assert response.status_code == 200
    return response.json()


async def view(sandbox: httpx.AsyncClient, path: str, **params: str) -> Any:
    """A `/__sandbox/...` inspection view's JSON."""
    response = await sandbox.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def assert_error(response: httpx.Response, status_code: int, code: str) -> None:
    """The response is a `{code, message}` error with that status and code."""
    assert response.status_code == status_code, response.text
    body = response.json()
    assert body["code"] == code and isinstance(body["message"], str) and body["message"]
