"""Webhooks from the running local stack (`qrpro local`): the table stream →
the `events` function → the webhooks queue → the `webhooks` function → a
receiver on 127.0.0.1 owned by the test. Signatures are verified with the
`standardwebhooks` package."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.e2e.conftest import Stack, resource, running_stack, template_without
from tests.integration.test_webhooks import Receiver, verify

CODE_EVENTS = ["code.created", "code.updated", "code.deleted", "code.reactivated", "code.expired"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def _create(stack: Stack, token: str, url: str, events: list[str]) -> dict[str, Any]:
    r = stack.api("POST", "/api/webhooks", token, json_body={"url": url, "events": events})
    assert r.status == 201, r.body
    out: dict[str, Any] = r.json()
    return out


def test_local_stack_delivers_signed_code_events_and_ping(stack: Stack, receiver: Receiver) -> None:
    token = stack.account("business")["api_key"]
    hook = _create(stack, token, receiver.url("/hooks/qr"), CODE_EVENTS)
    secret = hook["secret"]
    assert stack.api("GET", f"/api/webhooks/{hook['id']}", token).json().get("secret") is None

    ping = stack.api("POST", f"/api/webhooks/{hook['id']}/test", token)
    assert ping.status == 200 and ping.json()["status_code"] == 200 and ping.json()["event_type"] == "ping"
    assert len(receiver.requests) == 1
    assert verify(secret, receiver.requests[0])["type"] == "ping"

    started = time.monotonic()
    created = stack.api("POST", "/api/codes", token, json_body={"url": "https://example.com/one", "label": "e2e"})
    assert created.status == 201, created.body
    code = created.json()
    got = receiver.wait_for(2, timeout=60)
    latency = time.monotonic() - started
    assert len(got) == 2, stack.log.read_text()[-3000:]
    print(f"code.created reached the receiver {latency:.2f} s after the create answered")
    first = verify(secret, got[1])
    assert first["type"] == "code.created" and first["data"]["code"]["id"] == code["id"]
    assert first["data"]["code"]["url"] == "https://example.com/one" and first["scope"] == {"type": "user"}

    assert stack.api("PATCH", f"/api/codes/{code['id']}", token,
                     json_body={"url": "https://example.com/two"}).status == 200
    assert stack.api("DELETE", f"/api/codes/{code['id']}", token).status == 200
    assert stack.api("POST", f"/api/codes/{code['id']}/reactivate", token).status == 200
    got = receiver.wait_for(5, timeout=60)
    assert len(got) == 5, stack.log.read_text()[-3000:]
    events = [verify(secret, r) for r in got[1:]]
    by_type = {e["type"]: e for e in events}
    assert sorted(by_type) == ["code.created", "code.deleted", "code.reactivated", "code.updated"]
    assert by_type["code.updated"]["data"]["code"]["url"] == "https://example.com/two"
    assert by_type["code.deleted"]["data"]["code"]["status"] == "grace"
    assert by_type["code.reactivated"]["data"]["code"]["status"] == "active"
    for r, e in zip(got[1:], events, strict=True):
        assert r.path == "/hooks/qr" and r.headers["webhook-id"] == e["id"]
        assert r.headers["content-type"] == "application/json"
        assert json.loads(r.body)["created_at"] <= int(r.headers["webhook-timestamp"])
    assert len({e["id"] for e in events}) == 4

    deliveries = stack.api("GET", f"/api/webhooks/{hook['id']}/deliveries", token).json()["deliveries"]
    assert len(deliveries) == 5 and all(d["status_code"] == 200 and d["attempt"] == 1 for d in deliveries)
    assert {d["event_type"] for d in deliveries} == {"ping", *by_type}
    assert [d["at"] for d in deliveries] == sorted((d["at"] for d in deliveries), reverse=True)


def test_local_stack_refuses_private_targets(stack: Stack) -> None:
    token = stack.account("business")["api_key"]
    for url in ("http://10.0.0.1/hook", "https://169.254.169.254/latest", "http://192.168.1.1/",
                "http://[fd00::1]/", "http://100.64.0.1/"):
        r = stack.api("POST", "/api/webhooks", token, json_body={"url": url, "events": ["code.created"]})
        assert r.status == 400 and r.json()["field"] == "url", (url, r.body)


@pytest.fixture
def retry_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """A stack of its own with a shortened backoff schedule (1 s steps), inherited by its functions."""
    monkeypatch.setenv("QRPRO_WEBHOOK_BACKOFF", "1,1,1,1,1,1,1")
    with running_stack(tmp_path / "retry-stack", "--in-memory") as s:
        yield s


def test_local_stack_retries_until_the_receiver_accepts(retry_stack: Stack) -> None:
    receiver = Receiver(statuses=[500, 502, 503])
    try:
        token = retry_stack.account("business")["api_key"]
        hook = _create(retry_stack, token, receiver.url(), ["code.created"])
        assert retry_stack.api("POST", "/api/codes", token, json_body={"url": "https://example.com/r"}).status == 201
        got = receiver.wait_for(4, timeout=90)
        assert len(got) == 4, retry_stack.log.read_text()[-3000:]
        ids = {r.headers["webhook-id"] for r in got}
        assert len(ids) == 1 and len({r.body for r in got}) == 1
        assert all(verify(hook["secret"], r)["type"] == "code.created" for r in got)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            deliveries = retry_stack.api("GET", f"/api/webhooks/{hook['id']}/deliveries", token).json()["deliveries"]
            if deliveries and deliveries[0]["status_code"] == 200:
                break
            time.sleep(0.2)
        assert [(d["attempt"], d["status_code"]) for d in deliveries] == [(4, 200), (3, 503), (2, 502), (1, 500)]
        assert all(d["event_id"] in ids for d in deliveries)
        assert deliveries[0]["next_retry_at"] is None and all(d["next_retry_at"] for d in deliveries[1:])
    finally:
        receiver.stop()


def _without_report_batch_item_failures(resources: dict[str, Any]) -> None:
    del resource(resources, "AWS::Lambda::EventSourceMapping", "EventsFn")["FunctionResponseTypes"]


@pytest.mark.parametrize("mapping", ["as synthesized", "without ReportBatchItemFailures"])
def test_a_failed_fan_out_is_retried_only_when_the_mapping_reports_item_failures(
        tmp_path: Path, receiver: Receiver, mapping: str) -> None:
    """The webhooks queue is gone while a code is created: the events function fails
    that record's fan-out and answers it in batchItemFailures. With the mapping's
    ReportBatchItemFailures the record is retried and delivered once the queue is
    back; without it Lambda takes the answer for a success and the event is lost."""
    extra = () if mapping == "as synthesized" else (
        "--template", str(template_without(tmp_path / "template.json", _without_report_batch_item_failures)))
    with running_stack(tmp_path / "data", "--in-memory", *extra) as stack:
        token = stack.account("business")["api_key"]
        _create(stack, token, receiver.url("/hooks/retry"), ["code.created"])
        # A first event warms the events and webhooks functions: the failing fan-out below then
        # happens within the outage, not after a slow cold start.
        assert stack.api("POST", "/api/codes", token, json_body={"url": "https://example.com/warm"}).status == 201
        assert len(receiver.wait_for(1, timeout=60)) == 1, stack.log.read_text()[-3000:]
        receiver.requests.clear()
        info = json.loads((stack.data_dir / "local.json").read_text())
        sqs = boto3.client("sqs", endpoint_url=info["endpoints"]["moto"])
        url = info["queues"]["webhooks"]["url"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"])
        sqs.delete_queue(QueueUrl=url)
        assert stack.api("POST", "/api/codes", token, json_body={"url": "https://example.com/retry"}).status == 201
        time.sleep(4)  # the fan-out fails at least once (it runs about a second after the write)
        sqs.create_queue(QueueName=url.rsplit("/", 1)[-1], Attributes=attributes["Attributes"])
        got = receiver.wait_for(1, timeout=30 if mapping == "as synthesized" else 15)
        if mapping == "as synthesized":
            assert [json.loads(r.body)["type"] for r in got] == ["code.created"], stack.log.read_text()[-3000:]
            assert "reported 1 of 1 stream records failed: retrying" in stack.log.read_text()
        else:
            assert got == [], "the event was retried although the mapping ignores batchItemFailures"
