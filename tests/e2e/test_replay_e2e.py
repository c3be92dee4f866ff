"""`qrpro admin replay-failed-events` end to end on the local stack: a fan-out that fails until
the stream mapping gives up lands in the failed-events bucket; the replay turns it into the
webhook delivery it should have been, once, however often it runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import Stack, resource, running_stack, template_without, until
from tests.integration.test_webhooks import Receiver, verify


def _events_cannot_queue_and_give_up_after_one_retry(resources: dict[str, Any]) -> None:
    """The events function's role loses sqs:SendMessage on the webhooks queue (each fan-out fails
    with AccessDenied, as in AWS), and its mapping gives up after one retry instead of ten."""
    resource(resources, "AWS::Lambda::EventSourceMapping", "EventsFn")["MaximumRetryAttempts"] = 1
    policy = resource(resources, "AWS::IAM::Policy", "EventsFnRole")["PolicyDocument"]
    kept = [s for s in policy["Statement"] if not ("sqs:SendMessage" in json.dumps(s["Action"])
                                                   and "QueuesWebhooks" in json.dumps(s["Resource"]))]
    assert len(kept) == len(policy["Statement"]) - 1
    policy["Statement"] = kept


@pytest.fixture
def broken_fan_out(tmp_path: Path) -> Iterator[Stack]:
    template = template_without(tmp_path / "template.json", _events_cannot_queue_and_give_up_after_one_retry)
    with running_stack(tmp_path / "data", "--in-memory", "--template", str(template)) as stack:
        yield stack


def test_a_fan_out_given_up_on_is_replayed_into_one_delivery(broken_fan_out: Stack) -> None:
    stack = broken_fan_out
    receiver = Receiver()
    try:
        token = stack.account("business")["api_key"]
        created = stack.api("POST", "/api/webhooks", token,
                            json_body={"url": receiver.url("/hooks/replay"), "events": ["code.created"]})
        assert created.status == 201, created.body
        hook = created.json()
        code = stack.api("POST", "/api/codes", token, json_body={"url": "https://example.com/replayed"})
        assert code.status == 201, code.body

        info = json.loads((stack.data_dir / "local.json").read_text())
        s3 = boto3.client("s3", endpoint_url=info["endpoints"]["moto"])
        bucket = info["outputs"]["FailedEventsBucketName"]
        objects = until(lambda: s3.list_objects_v2(Bucket=bucket).get("Contents"), seconds=90)
        assert objects, stack.log.read_text()[-3000:]
        assert "stream records given up (RetryAttemptsExhausted)" in stack.log.read_text()
        assert receiver.requests == []

        dry = stack.admin("replay-failed-events")
        assert (dry["applied"], dry["objects"], dry["would_queue"], dry["queued"]) == (False, 1, 1, 0), dry
        (delivery,) = dry["deliveries"]
        assert (delivery["webhook_id"], delivery["event_type"], delivery["status"]) == (
            hook["id"], "code.created", "would_queue")
        sqs = boto3.client("sqs", endpoint_url=info["endpoints"]["moto"])
        depth = sqs.get_queue_attributes(QueueUrl=info["outputs"]["WebhooksQueueUrl"],
                                         AttributeNames=["ApproximateNumberOfMessages"])
        assert depth["Attributes"]["ApproximateNumberOfMessages"] == "0"  # a dry run queues nothing

        applied = stack.admin("replay-failed-events", "--apply")
        assert (applied["queued"], applied["already_replayed"]) == (1, 0), applied
        got = receiver.wait_for(1, timeout=60)
        assert len(got) == 1, stack.log.read_text()[-3000:]
        event = verify(hook["secret"], got[0])  # signed by the webhooks function, as any delivery
        assert event["type"] == "code.created" and event["data"]["code"]["id"] == code.json()["id"]
        assert got[0].headers["webhook-id"] == event["id"] == delivery["event_id"]  # the outbox event's own id

        again = stack.admin("replay-failed-events", "--apply")
        assert (again["queued"], again["already_replayed"], again["would_queue"]) == (0, 1, 0), again
        deliveries = until(lambda: stack.api("GET", f"/api/webhooks/{hook['id']}/deliveries", token)
                           .json()["deliveries"], seconds=30)
        assert [(d["event_id"], d["status_code"]) for d in deliveries] == [(event["id"], 200)]
    finally:
        receiver.stop()
