"""The scans aggregator's partial-batch answer (Powertools' BatchProcessor)
with the counting stubbed: which messages SQS redelivers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.scans import handler as consumer
from qrpro.domain.scan_codec import Scan
from qrpro.services import scans as scan_service
from qrpro_cli.runtime import FakeContext

CONTEXT = FakeContext("scans", "r0")


def body(scan_id: str) -> str:
    return json.dumps({"id": scan_id, "code_id": "c1", "scope": "USER#u", "plan": "business",
                       "hour": "2026-04-10-15", "country": "US", "device": "mobile"})


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": "h", "body": b, "attributes": {},
                         "messageAttributes": {}, "eventSource": "aws:sqs"} for i, b in enumerate(bodies)]}


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[list[Scan]]:
    """Every batch handed to the service; scans whose id starts with "fail" are not counted."""
    seen: list[list[Scan]] = []

    def aggregate(batch: list[Scan], now: int) -> list[Scan]:
        seen.append(batch)
        return [s for s in batch if s.id.startswith("fail")]

    monkeypatch.setattr(scan_service, "aggregate", aggregate)
    monkeypatch.setattr(scan_service, "drain_pending", lambda now: 0)
    return seen


def test_only_scans_not_counted_are_redelivered(counted: list[list[Scan]]) -> None:
    out = consumer.handler(sqs_event(body("ok1"), body("fail1"), body("ok2"), body("fail2")), CONTEXT)
    assert out == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}
    assert [[s.id for s in batch] for batch in counted] == [["ok1", "fail1", "ok2", "fail2"]]  # one batch
    assert [s.message_id for s in counted[0]] == ["m0", "m1", "m2", "m3"]


def test_each_scan_carries_when_sqs_took_its_message(counted: list[list[Scan]]) -> None:
    event = sqs_event(body("ok1"), body("ok2"))
    event["Records"][0]["attributes"] = {"SentTimestamp": "1796690000123", "ApproximateReceiveCount": "1"}
    consumer.handler(event, CONTEXT)
    assert [s.sent_ms for s in counted[0]] == [1796690000123, None]  # unknown: its copies may be anywhere


def test_a_batch_that_failed_entirely_is_reported_not_raised(counted: list[list[Scan]]) -> None:
    out = consumer.handler(sqs_event(body("fail1"), body("fail2")), CONTEXT)
    assert out == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}


def test_malformed_messages_are_acknowledged_and_not_counted(counted: list[list[Scan]]) -> None:
    out = consumer.handler(sqs_event("not json", json.dumps({"id": "x"}), body("ok1")), CONTEXT)
    assert out == {"batchItemFailures": []}
    assert [[s.id for s in batch] for batch in counted] == [["ok1"]]


def test_an_event_without_records_answers_an_empty_report(counted: list[list[Scan]]) -> None:
    assert consumer.handler({"Records": []}, CONTEXT) == {"batchItemFailures": []}
