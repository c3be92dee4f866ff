"""Opaque, tamper-evident list cursors: base64url(JSON) + HMAC-SHA256.

The cursor binds the scope it was issued for: a forged, altered or foreign
cursor is a ``400 validation_error`` on ``cursor``, never another tenant's data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from qrpro.domain.errors import ValidationFailed

_SIG_LEN = 16  # bytes of the HMAC kept: 128 bits


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(position: dict[str, Any], scope: str, secret: str) -> str:
    payload = json.dumps({"s": scope, "p": position}, separators=(",", ":"), sort_keys=True).encode()
    sig = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:_SIG_LEN]
    return _b64(payload) + "." + _b64(sig)


def decode(cursor: str, scope: str, secret: str) -> dict[str, Any]:
    bad = ValidationFailed("cursor", "not a cursor issued for this list")
    if not isinstance(cursor, str) or len(cursor) > 2048 or cursor.count(".") != 1:
        raise bad
    body, sig = cursor.split(".")
    try:
        payload, given = _unb64(body), _unb64(sig)
    except (ValueError, TypeError) as err:
        raise bad from err
    want = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:_SIG_LEN]
    if not hmac.compare_digest(want, given):
        raise bad
    try:
        data = json.loads(payload)
    except ValueError as err:
        raise bad from err
    if not isinstance(data, dict) or data.get("s") != scope or not isinstance(data.get("p"), dict):
        raise bad
    position: dict[str, Any] = data["p"]
    return position
