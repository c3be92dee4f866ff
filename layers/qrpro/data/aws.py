"""Lazily built, cached boto3 clients.

Never built at import time: tests and the local stack set the environment
(``AWS_ENDPOINT_URL_DYNAMODB`` and friends) before the first call.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    max_pool_connections=50,
)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_CONFIG)  # type: ignore[call-overload]


def ddb() -> Any:
    """The DynamoDB client (typed loosely: items here are plain dicts)."""
    return client("dynamodb")


def reset() -> None:
    """Forget cached clients (tests that change endpoints between cases)."""
    client.cache_clear()
