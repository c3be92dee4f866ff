"""Secrets the functions need at run time, read once per container: from the
environment (local stack, tests) or from the Secrets Manager secret the stack
generated (AWS)."""

from __future__ import annotations

from functools import cache

from qrpro.config import settings
from qrpro.data.aws import client
from qrpro.domain import sealing


def _read(value: str, arn: str, names: str) -> str:
    if value:
        return value
    if not arn:
        raise RuntimeError(f"neither {names} is set")
    secret: str = client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    return secret


@cache
def cursor_secret() -> str:
    """The key that signs list cursors."""
    conf = settings()
    return _read(conf.cursor_secret, conf.cursor_secret_arn, "CURSOR_SECRET nor CURSOR_SECRET_ARN")


@cache
def webhook_key() -> bytes:
    """The key that seals webhook signing secrets at rest (qrpro.domain.sealing)."""
    conf = settings()
    return sealing.key_from(_read(conf.webhook_key, conf.webhook_key_arn, "WEBHOOK_KEY nor WEBHOOK_KEY_ARN"))
