"""The API tests' process has no `fiflow up` state dir: give it a payload key ring."""

from __future__ import annotations

import pytest

from fiflow.integrations.codec import new_key


@pytest.fixture(autouse=True)
def payload_keys(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh key ring for the test (reports and the inbox are sealed with it)."""
    key = new_key()
    monkeypatch.setenv("FIFLOW_PAYLOAD_KEYS", key)
    return key
