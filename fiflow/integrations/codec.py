"""Payload encryption: AES-256-GCM over every Temporal payload, with a key ring for rotation."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_HEADER = "encryption-key-id"
# Payloads written before the key ring carry this fixed id; any ring key may have made them.
LEGACY_KEY_ID = b"fiflow-v1"
ACTIVE_MARK = "*"


class KeyRingError(ValueError):
    """A payload key setting that cannot be used (the message never includes key material)."""


def key_id(key: bytes) -> str:
    """An id derived from the key material: stable, public, and says nothing about the key."""
    return hashlib.sha256(b"fiflow-payload-key:" + key).hexdigest()[:16]


def decode_key(encoded: str) -> bytes:
    """A base64 key of exactly 32 bytes, or a clear error."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise KeyRingError("a payload key is not valid base64") from exc
    if len(key) != 32:
        raise KeyRingError("a payload key must decode to 32 bytes (AES-256)")
    return key


def new_key() -> str:
    """A fresh random key, base64, for a key file or FIFLOW_PAYLOAD_KEYS."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class KeyRing:
    """Every key that may have written a payload; one of them encrypts new ones."""

    keys: dict[str, bytes]  # key id -> key
    active_id: str

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """`*KEY,KEY,...`: base64 keys; the one marked `*` encrypts (a lone key needs no mark)."""
        entries = [e.strip() for e in spec.replace("\n", ",").split(",") if e.strip()]
        if not entries:
            raise KeyRingError("no payload key given")
        keys: dict[str, bytes] = {}
        marked: list[str] = []
        for entry in entries:
            key = decode_key(entry.removeprefix(ACTIVE_MARK))
            kid = key_id(key)
            keys[kid] = key
            if entry.startswith(ACTIVE_MARK):
                marked.append(kid)
        if len(marked) > 1:
            raise KeyRingError(f"{len(marked)} payload keys are marked {ACTIVE_MARK!r}; mark one")
        if not marked and len(keys) > 1:
            raise KeyRingError(
                f"{len(keys)} payload keys and none marked {ACTIVE_MARK!r} to encrypt with"
            )
        return cls(keys=keys, active_id=marked[0] if marked else next(iter(keys)))


def read_key_file(path: Path) -> str:
    """The key ring spec stored in a key file."""
    try:
        return path.read_text()
    except OSError as exc:
        raise KeyRingError(f"payload key file {path} cannot be read: {exc.strerror}") from exc


def ensure_key_file(path: Path) -> bool:
    """Create a key file with a new key (mode 0600) unless one exists; True when created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        out.write(new_key() + "\n")
    return True


class EncryptionCodec(PayloadCodec):
    """Encrypts payloads so history (in the server and the Web UI) holds no readable PII."""

    def __init__(self, ring: KeyRing):
        self._ring = ring
        self._ciphers = {kid: AESGCM(key) for kid, key in ring.keys.items()}
        self._active = self._ciphers[ring.active_id]
        self._active_id = ring.active_id.encode()

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload whole (metadata included) with the active key."""
        return self._seal(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt payloads written with any key of the ring; pass unencrypted ones through."""
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                out.append(p)
                continue
            inner = Payload()
            inner.ParseFromString(self._open(p))
            out.append(inner)
        return out

    def seal(self, data: bytes) -> dict[str, str]:
        """Encrypt bytes kept outside Temporal (a stored report, a queued message)."""
        [sealed] = self._seal([Payload(data=data)])
        return {
            "key_id": self._ring.active_id,
            "sealed": base64.b64encode(sealed.data).decode("ascii"),
        }

    def unseal(self, sealed: dict[str, str]) -> bytes:
        """The bytes `seal` encrypted, with whichever ring key did it."""
        payload = Payload(
            metadata={"encoding": ENCODING, KEY_ID_HEADER: sealed["key_id"].encode()},
            data=base64.b64decode(sealed["sealed"]),
        )
        inner = Payload()
        inner.ParseFromString(self._open(payload))
        return inner.data

    def _seal(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            nonce = os.urandom(12)
            sealed = nonce + self._active.encrypt(nonce, p.SerializeToString(), None)
            out.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID_HEADER: self._active_id}, data=sealed
                )
            )
        return out

    def _open(self, p: Payload) -> bytes:
        kid = p.metadata.get(KEY_ID_HEADER) or p.metadata.get("key-id", b"")
        nonce, sealed = p.data[:12], p.data[12:]
        if kid == LEGACY_KEY_ID:
            candidates = list(self._ciphers.values())
        elif kid.decode(errors="replace") in self._ciphers:
            candidates = [self._ciphers[kid.decode()]]
        else:
            raise KeyRingError(
                f"payload was encrypted with key {kid.decode(errors='replace')!r}, "
                "which is not in FIFLOW_PAYLOAD_KEYS"
            )
        for cipher in candidates:
            try:
                return cipher.decrypt(nonce, sealed, None)
            except InvalidTag:
                continue
        raise KeyRingError("payload does not decrypt with its key (corrupted or tampered)")
