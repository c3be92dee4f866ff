"""Secrets the functions need at run time, read once per container."""

from __future__ import annotations

from functools import cache

from qrpro.config import settings
from qrpro.data.aws import client


@cache
def cursor_secret() -> str:
    """The key that signs list cursors: the value from the environment (local
    stack, tests) or the Secrets Manager secret the stack generated (AWS)."""
    conf = settings()
    if conf.cursor_secret:
        return conf.cursor_secret
    if not conf.cursor_secret_arn:
        raise RuntimeError("neither CURSOR_SECRET nor CURSOR_SECRET_ARN is set")
    value: str = client("secretsmanager").get_secret_value(SecretId=conf.cursor_secret_arn)["SecretString"]
    return value
