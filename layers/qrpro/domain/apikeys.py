"""API keys: ``abnd_qrpro_<secret>`` bearer tokens, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets

PREFIX = "abnd_qrpro_"
PREFIX_LEN = 16  # characters of the token shown back as `prefix`
# 32 random bytes = 256 bits, as URL-safe base64 (43 characters).
_TOKEN_RE = re.compile(r"^abnd_qrpro_[A-Za-z0-9_-]{32,128}$")


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def well_formed(token: str) -> bool:
    return bool(_TOKEN_RE.match(token))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token
