"""Payload encryption: AES-256-GCM over every Temporal payload when a key is configured."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = b"fiflow-v1"


def decode_key(encoded: str) -> bytes:
    """A base64 key of exactly 32 bytes, or a clear error."""
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise ValueError("FIFLOW_PAYLOAD_KEY is not valid base64") from exc
    if len(key) != 32:
        raise ValueError("FIFLOW_PAYLOAD_KEY must decode to 32 bytes (AES-256)")
    return key


class EncryptionCodec(PayloadCodec):
    """Encrypts payloads so history (in the server and the Web UI) holds no readable PII."""

    def __init__(self, key: bytes):
        self._aes = AESGCM(key)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload whole (metadata included)."""
        out = []
        for p in payloads:
            nonce = os.urandom(12)
            sealed = nonce + self._aes.encrypt(nonce, p.SerializeToString(), None)
            out.append(Payload(metadata={"encoding": ENCODING, "key-id": KEY_ID}, data=sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt payloads this codec encrypted; pass others through."""
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                out.append(p)
                continue
            if p.metadata.get("key-id") != KEY_ID:
                raise ValueError("payload was encrypted with an unknown key")
            clear = self._aes.decrypt(p.data[:12], p.data[12:], None)
            inner = Payload()
            inner.ParseFromString(clear)
            out.append(inner)
        return out
