"""Fixtures of the integration tests (DynamoDB Local and moto's server: tests/conftest.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import boto3
import pytest

from lambdas.redirect import handler as redirect
from lambdas.scans import handler as consumer
from qrpro.data import edge
from tests.conftest import reset_caches


@pytest.fixture
def queue(table: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Fresh scans, compaction and mail queues on moto's server; SES sender verified there.
    Yields the scans queue's URL."""
    for service in ("SQS", "SES"):
        monkeypatch.setenv(f"AWS_ENDPOINT_URL_{service}", moto_endpoint)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    urls = {name: sqs.create_queue(QueueName=f"{name}-{uuid.uuid4().hex[:10]}",
                                   Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
            for name in ("scans", "compaction", "mail")}
    monkeypatch.setenv("SCANS_QUEUE_URL", urls["scans"])
    monkeypatch.setenv("COMPACTION_QUEUE_URL", urls["compaction"])
    monkeypatch.setenv("MAIL_QUEUE_URL", urls["mail"])
    monkeypatch.setenv("SES_SENDER", "no-reply@aqr.net")
    reset_caches()
    boto3.client("ses", endpoint_url=moto_endpoint).verify_email_identity(EmailAddress="no-reply@aqr.net")
    redirect._cache.clear()
    edge._unsent.clear()
    monkeypatch.setattr(edge, "_down_until", {"sqs": 0.0, "dynamodb": 0.0})
    monkeypatch.setattr(consumer, "_last_drain", time.monotonic())  # drains only when a test asks
    yield urls["scans"]
    redirect._cache.clear()
    edge._unsent.clear()
