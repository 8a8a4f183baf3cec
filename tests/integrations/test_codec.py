"""The payload codec: key ring, rotation, key ids, encoded failures and summaries."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from fiflow.integrations.codec import (
    ENCODING,
    EncryptionCodec,
    KeyRing,
    KeyRingError,
    ensure_key_file,
    key_id,
    new_key,
)
from fiflow.integrations.settings import Settings
from fiflow.integrations.temporal import data_converter, payload_codec

PII = "+12025550147 Jane Canary, card 4242, ACME $912.00"


async def roundtrip(encoder: EncryptionCodec, decoder: EncryptionCodec) -> str:
    [clear] = pydantic_data_converter.payload_converter.to_payloads([PII])
    [sealed] = await encoder.encode([clear])
    assert PII.encode() not in sealed.SerializeToString()
    [opened] = await decoder.decode([sealed])
    return str(pydantic_data_converter.payload_converter.from_payloads([opened])[0])


async def test_a_single_key_encrypts_and_decrypts() -> None:
    codec = EncryptionCodec(KeyRing.parse(new_key()))
    assert await roundtrip(codec, codec) == PII


async def test_key_ids_come_from_the_key_material() -> None:
    key = new_key()
    ring = KeyRing.parse(key)
    assert ring.active_id == KeyRing.parse(key).active_id  # stable
    assert ring.active_id != KeyRing.parse(new_key()).active_id
    assert key not in ring.active_id and len(ring.active_id) == 16
    [clear] = pydantic_data_converter.payload_converter.to_payloads(["x"])
    [sealed] = await EncryptionCodec(ring).encode([clear])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata["encryption-key-id"] == ring.active_id.encode()


async def test_rotation_keeps_old_histories_readable() -> None:
    old, new = new_key(), new_key()
    before = EncryptionCodec(KeyRing.parse(old))
    after = EncryptionCodec(KeyRing.parse(f"*{new},{old}"))
    assert await roundtrip(before, after) == PII  # written before the rotation
    assert await roundtrip(after, after) == PII
    [clear] = pydantic_data_converter.payload_converter.to_payloads(["x"])
    [sealed] = await after.encode([clear])
    assert sealed.metadata["encryption-key-id"].decode() == key_id(
        KeyRing.parse(new).keys[KeyRing.parse(new).active_id]
    )
    # A ring without the key that wrote a payload says which key id it lacks.
    with pytest.raises(KeyRingError, match=KeyRing.parse(old).active_id):
        await EncryptionCodec(KeyRing.parse(new)).decode(
            await before.encode(pydantic_data_converter.payload_converter.to_payloads(["x"]))
        )


async def test_a_tampered_payload_is_refused() -> None:
    codec = EncryptionCodec(KeyRing.parse(new_key()))
    [sealed] = await codec.encode([Payload(data=b"hello")])
    broken = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + b"\x00")
    with pytest.raises(KeyRingError, match="tampered"):
        await codec.decode([broken])


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("", "no payload key"),
        ("not base64!", "not valid base64"),
        ("c2hvcnQ=", "32 bytes"),
        (f"{new_key()},{new_key()}", "none marked"),
        (f"*{new_key()},*{new_key()}", "mark one"),
    ],
)
def test_bad_key_rings_are_refused_without_echoing_them(spec: str, problem: str) -> None:
    with pytest.raises(KeyRingError, match=problem) as err:
        KeyRing.parse(spec)
    for part in filter(None, spec.replace("*", "").split(",")):
        assert part not in str(err.value)


async def test_failure_messages_and_stack_traces_are_encrypted() -> None:
    converter = data_converter(Settings(payload_keys=new_key()))
    failure = Failure()
    try:
        raise ApplicationError(f"gateway refused {PII}", type="SmsRejected")
    except ApplicationError as exc:
        await converter.encode_failure(exc, failure)
    stored = failure.SerializeToString()
    assert PII.encode() not in stored
    assert failure.message == "Encoded failure"
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    decoded = await converter.decode_failure(failure)
    assert PII in str(decoded)


async def test_summaries_go_through_the_codec() -> None:
    # Static summaries and details are user metadata: the client encodes them with the
    # converter, so with a codec they are ciphertext too.
    converter = data_converter(Settings(payload_keys=new_key()))
    [summary] = await converter.encode([PII])
    assert summary.metadata["encoding"] == ENCODING


def test_encryption_is_on_unless_turned_off(tmp_path: Path) -> None:
    missing = Settings(payload_key_file=tmp_path / "none.key")
    with pytest.raises(KeyRingError, match="FIFLOW_PAYLOAD_KEYS"):
        payload_codec(missing)
    assert payload_codec(Settings(payload_encryption=False)) is None
    assert data_converter(Settings(payload_encryption=False)) is pydantic_data_converter
    key_file = tmp_path / "payload.key"
    assert ensure_key_file(key_file)
    assert payload_codec(Settings(payload_key_file=key_file)) is not None


def test_the_key_file_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "payload.key"
    assert ensure_key_file(path) is True
    first = path.read_text()
    assert ensure_key_file(path) is False
    assert path.read_text() == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    KeyRing.parse(first)


def test_the_env_var_key_ring_wins_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    key = new_key()
    monkeypatch.setenv("FIFLOW_PAYLOAD_KEYS", key)
    codec = payload_codec(Settings(payload_key_file=Path("/nonexistent/payload.key")))
    assert codec is not None
    assert dataclasses.is_dataclass(KeyRing.parse(key))
