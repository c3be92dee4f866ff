"""Secrets at rest: AES-256-GCM with the owner's identity as associated data.

A webhook's signing secret cannot be hashed like an API key (the service signs
with it), so the item keeps it sealed under a key that only the functions that
create or use the secret can read (docs/security.md). The associated data
binds a sealed value to its item: copied into another item it does not open.
"""

from __future__ import annotations

import base64
import hashlib
import os

VERSION = "v1"
NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value that does not open with this key and context."""


def key_from(material: str) -> bytes:
    """The 256-bit key derived from the configured key material (a random string)."""
    if len(material) < 32:
        raise ValueError("the sealing key material must be at least 32 characters")
    return hashlib.sha256(material.encode("utf-8")).digest()


def seal(key: bytes, plaintext: str, context: str, nonce: bytes | None = None) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # only the functions that seal pay the import

    nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
    return f"{VERSION}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def unseal(key: bytes, value: str, context: str) -> str:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    version, _, body = value.partition(":")
    if version != VERSION:
        raise SealError(f"unknown sealing version {version!r}")
    try:
        raw = base64.b64decode(body, validate=True)
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode("utf-8")).decode("utf-8")
    except (InvalidTag, ValueError) as err:
        raise SealError("the sealed value does not open with this key and context") from err
