"""Encryption by default on `fiflow up`: raw history holds ciphertext; the codec server decodes
for callers with the token, and for nobody else."""

from __future__ import annotations

import base64
import json
import stat

import httpx
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client

from tests.e2e.conftest import CustomerPool
from tests.e2e.stack import RunningStack
from tests.e2e.test_alerts_e2e import alert_body, outbox, post_alert
from tests.e2e.waiting import eventually

ENCRYPTED = b"binary/encrypted"


def payloads_in(message: Message, path: str = "") -> list[tuple[str, Payload]]:
    """Every Payload inside a protobuf message (inputs, results, summaries...), with its path."""
    if isinstance(message, Payload):
        return [(path, message)]
    found: list[tuple[str, Payload]] = []
    for field, value in message.ListFields():
        at = f"{path}.{field.name}"
        if isinstance(value, Message):
            found += payloads_in(value, at)
        elif isinstance(value, (str, bytes)):
            continue
        elif hasattr(value, "items"):  # a map field
            for k, v in value.items():
                found += payloads_in(v, f"{at}[{k}]") if isinstance(v, Message) else []
        elif hasattr(value, "__len__"):  # a repeated field (upb's has no __iter__ attribute)
            for i, v in enumerate(value[j] for j in range(len(value))):
                found += payloads_in(v, f"{at}[{i}]") if isinstance(v, Message) else []
    return found


async def test_history_is_ciphertext_and_the_codec_server_decodes_only_for_the_token(
    stack: RunningStack, http: httpx.AsyncClient, pool: CustomerPool
) -> None:
    customer = pool.take()
    merchant = "Canary Merchant 7319"
    alert_id = await post_alert(http, stack, alert_body(customer, "4321.09", merchant))
    await eventually(lambda: outbox(http, stack, customer["phone"]), lambda m: len(m) == 1)

    # A client without the key sees what the server stores: the history as it is.
    raw = await Client.connect(stack.temporal)
    handle = raw.get_workflow_handle(f"alert-{alert_id}")
    # The SMS goes out from a local activity inside the first workflow task; its markers
    # reach the history when that task completes, a moment after the text is in the outbox.
    history = await eventually(
        handle.fetch_history,
        lambda h: any(
            e.marker_recorded_event_attributes.marker_name == "core_local_activity"
            for e in h.events
        ),
    )
    stored = b"".join(e.SerializeToString() for e in history.events)
    for secret in (customer["phone"], merchant, "4321.09", customer["cards"][0]["last4"]):
        assert secret.encode() not in stored, f"{secret!r} is readable in the raw history"
    found = [(f"{e.event_id}{path}", p) for e in history.events for path, p in payloads_in(e)]
    # Clear by design, and free of personal data: search attributes (the server indexes
    # them) and the SDK's own marker data: a local activity's sequence, attempt and type, and
    # a patch's id (a name in our code).
    by_design = (
        ".search_attributes.",
        ".marker_recorded_event_attributes.details[data].",
        ".marker_recorded_event_attributes.details[patch-data].",
    )
    found = [(path, p) for path, p in found if not any(d in path for d in by_design)]
    clear = [(path, p.data[:60]) for path, p in found if p.metadata.get("encoding") != ENCRYPTED]
    assert not clear, "\n".join(map(str, clear))
    kinds = {path.split(".", 1)[1] for path, _ in found}
    for kind in (
        "workflow_execution_started_event_attributes.input.payloads[0]",
        "user_metadata.summary",
        # The alert's back-office calls run as local activities (issue 12's hot path): their
        # results, the customer's profile among them, are in its markers, encrypted.
        "marker_recorded_event_attributes.details[result].payloads[0]",
    ):
        assert kind in kinds, sorted(kinds)
    key_ids = {p.metadata.get("encryption-key-id") for _, p in found}
    assert len(key_ids) == 1 and None not in key_ids

    [started] = [
        p for path, p in found if "workflow_execution_started_event_attributes.input" in path
    ]
    body = json_format.MessageToJson(Payloads(payloads=[started]))
    decode = f"{stack.codec}/decode"
    token = stack.codec_token()
    no_token = await http.post(decode, content=body)
    assert no_token.status_code == 401 and no_token.json()["code"] == "unauthorized"
    wrong = await http.post(decode, content=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    wrong_path = await http.post(f"{stack.codec}/t/nope/decode", content=body)
    assert wrong_path.status_code == 401

    for r in (
        await http.post(decode, content=body, headers={"Authorization": f"Bearer {token}"}),
        await http.post(f"{stack.codec}/t/{token}/decode", content=body),
    ):
        assert r.status_code == 200, r.text
        [clear] = r.json()["payloads"]
        assert base64.b64decode(clear["metadata"]["encoding"]) == b"json/plain"
        alert_input = json.loads(base64.b64decode(clear["data"]))
        assert alert_input["request"]["transaction"]["merchant"] == merchant

    # The UI's origin may call from a browser; any other origin gets no CORS grant.
    ui_origin = stack.ui
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    ok = await http.options(decode, headers={"Origin": ui_origin, **preflight})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ui_origin
    evil = await http.options(decode, headers={"Origin": "http://evil.example", **preflight})
    assert "access-control-allow-origin" not in evil.headers


def test_fiflow_up_keeps_its_key_and_token_private(stack: RunningStack) -> None:
    for name in ("payload.key", "codec.token"):
        mode = stat.S_IMODE((stack.state_dir / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    banner = stack.output()
    assert "Payloads        encrypted" in banner
    assert f"/t/{stack.codec_token()}" in banner
    assert (stack.state_dir / "payload.key").read_text().strip() not in banner
