"""Webhooks against DynamoDB Local and moto's SQS: the eight endpoints through
the real API handler, the fan-out and delivery functions invoked with the
events Lambda would send them, and the pinned-address HTTP client.

Every receiver is a tiny HTTP server on 127.0.0.1 owned by the test; names
such as ``hooks.example.test`` are mapped to 127.0.0.1 by a fake
``socket.getaddrinfo`` (no traffic ever leaves this machine).
"""

from __future__ import annotations

import datetime
import http.server
import json
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from standardwebhooks.webhooks import Webhook

from qrpro.data import accounts, delivery
from qrpro.data import webhooks as data
from qrpro.data.table import from_item
from qrpro.domain import webhooks as rules
from qrpro.domain.errors import MESSAGES
from qrpro.domain.sealing import SealError
from qrpro.services import codes as code_data
from qrpro.services import webhooks as service
from tests.conftest import reset_caches

# -- a receiver ---------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 recording every request; answers ``statuses``
    in turn (then ``default``)."""

    statuses: list[int] = field(default_factory=list)
    default: int = 200
    answer_body: bytes = b"ok"
    extra_headers: dict[str, str] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None
    requests: list[Received] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with lock:
                    receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                      body))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                self.send_response(status)
                for name, value in receiver.extra_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(receiver.answer_body)))
                self.end_headers()
                self.wfile.write(receiver.answer_body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            def remember(sock: Any, name: str | None, ctx: Any) -> None:
                receiver.sni.append(name)

            self.tls.sni_callback = remember
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def wait_for(self, n: int, timeout: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.requests)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def verify(secret: str, got: Received) -> Any:
    """Verification with the `standardwebhooks` package (not the project's code)."""
    return Webhook(secret).verify(got.body, got.headers)


# -- the environment ------------------------------------------------------------------


@pytest.fixture
def hooks(table: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Local-stack settings: loopback targets allowed, a fresh delivery queue, a short schedule."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_endpoint)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    url = sqs.create_queue(QueueName=f"hooks-{uuid.uuid4().hex[:10]}",
                           Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    monkeypatch.setenv("WEBHOOKS_QUEUE_URL", url)
    monkeypatch.setenv("ALLOW_LOOPBACK_WEBHOOKS", "true")
    monkeypatch.setenv(service.BACKOFF_ENV, "1,1,1,1,1,1,1")
    reset_caches()
    return url


def create_hook(api: Any, token: str, url: str, events: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    r = api.request("POST", "/api/webhooks", token, json={"url": url, "events": events or list(rules.EVENT_TYPES),
                                                          **extra})
    assert r.status == 201, r.body
    out: dict[str, Any] = r.json()
    return out


def raw_item(pk: str, sk: str) -> dict[str, Any] | None:
    from qrpro.data.aws import ddb
    from qrpro.data.table import key, table

    return from_item(ddb().get_item(TableName=table(), Key=key(pk, sk), ConsistentRead=True).get("Item"))


# -- the endpoints ------------------------------------------------------------------------


def test_create_list_get_patch_delete(api: Any, make_account: Any, hooks: str, receiver: Receiver) -> None:
    acct = make_account("business")
    before = int(time.time())
    created = create_hook(api, acct.token, receiver.url(), ["code.created", "code.updated"], description="crm")
    secret = created.pop("secret")
    assert secret.startswith("whsec_") and len(secret) >= 6 + 32
    assert set(created) == {"id", "url", "events", "description", "active", "created_at", "updated_at",
                            "failure_count"}
    assert created["url"] == receiver.url() and created["events"] == ["code.created", "code.updated"]
    assert created["description"] == "crm" and created["active"] is True and created["failure_count"] == 0
    assert before <= created["created_at"] == created["updated_at"] <= int(time.time())
    wid = created["id"]
    uuid.UUID(wid, version=4)

    stored = raw_item(f"USER#{acct.user_id}", f"WEBHOOK#{wid}")
    assert stored is not None and stored["url"] == receiver.url()
    # Sealed at rest: neither the secret nor its key bytes are in the item; it opens only for this webhook.
    assert "secret" not in stored and "whsec_" not in json.dumps(stored)
    assert secret.removeprefix("whsec_") not in json.dumps(stored)
    hook = data.Webhook.from_item(stored)
    assert data.signing_secrets(hook, int(time.time())) == [secret]
    assert "whsec_" not in repr(hook) and stored["secret_sealed"] not in repr(hook)
    with pytest.raises(SealError):
        data.signing_secrets(replace(hook, scope="USER#someone-else"), int(time.time()))

    listed = api.request("GET", "/api/webhooks", acct.token)
    assert listed.status == 200 and listed.json() == {"webhooks": [created]}
    one = api.request("GET", f"/api/webhooks/{wid}", acct.token)
    assert one.status == 200 and one.json() == created and b"whsec_" not in one.body

    r = api.request("PATCH", f"/api/webhooks/{wid}", acct.token,
                    json={"events": ["code.deleted"], "description": None, "active": False})
    assert r.status == 200, r.body
    patched = r.json()
    assert patched["events"] == ["code.deleted"] and patched["description"] == "" and patched["active"] is False
    assert patched["url"] == receiver.url() and "secret" not in patched
    after = raw_item(f"USER#{acct.user_id}", f"WEBHOOK#{wid}")
    assert after is not None and after["secret_sealed"] == stored["secret_sealed"]  # PATCH keeps the secret

    r = api.request("DELETE", f"/api/webhooks/{wid}", acct.token)
    assert (r.status, r.json()) == (200, {"id": wid, "deleted": True})
    assert api.request("GET", f"/api/webhooks/{wid}", acct.token).json() == {"error": "not_found",
                                                                             "message": MESSAGES["not_found"]}
    assert api.request("DELETE", f"/api/webhooks/{wid}", acct.token).status == 404
    assert api.request("GET", "/api/webhooks", acct.token).json() == {"webhooks": []}


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "https://h.example.test/", "events": []}, "events"),
    ({"url": "https://h.example.test/", "events": ["ping"]}, "events[0]"),
    ({"url": "https://h.example.test/", "events": ["code.created", "code.nope"]}, "events[1]"),
    ({"url": "https://h.example.test/"}, "events"),
    ({"events": ["code.created"]}, "url"),
    ({"url": "ftp://h.example.test/", "events": ["code.created"]}, "url"),
    ({"url": "https://h.example.test/", "events": ["code.created"], "secret": "whsec_x"}, "secret"),
    ({"url": "https://h.example.test/", "events": ["code.created"], "description": "x" * 501}, "description"),
])
def test_create_validation(api: Any, make_account: Any, hooks: str, body: dict[str, Any], field: str) -> None:
    r = api.request("POST", "/api/webhooks", make_account().token, json=body)
    assert r.status == 400, r.body
    assert r.json()["error"] == "validation_error" and r.json()["field"] == field


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names in the returned dict resolve to the listed addresses; everything
    else (DynamoDB Local, moto on 127.0.0.1) goes to the real resolver."""
    table: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in table:
            out = []
            for addr in table[host]:
                fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
                sockaddr = (addr, int(port or 0), 0, 0) if fam == socket.AF_INET6 else (addr, int(port or 0))
                out.append((fam, socket.SOCK_STREAM, 6, "", sockaddr))
            return out
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.mark.parametrize("address", ["10.0.0.5", "172.20.1.1", "192.168.0.2", "169.254.169.254", "100.64.3.3",
                                     "fd00::5", "fe80::1", "::ffff:10.0.0.5", "224.0.0.5", "0.0.0.0"])  # noqa: S104
def test_create_refuses_targets_resolving_to_forbidden_ranges(api: Any, make_account: Any, hooks: str,
                                                               fake_dns: dict[str, list[str]],
                                                               address: str) -> None:
    fake_dns["internal.example.test"] = [address]
    r = api.request("POST", "/api/webhooks", make_account().token,
                    json={"url": "https://internal.example.test/hook", "events": ["code.created"]})
    assert r.status == 400
    body = r.json()
    assert body["error"] == "validation_error" and body["field"] == "url"
    assert body["message"].startswith("must not resolve to a ") and address not in body["message"]


def test_deployed_settings_refuse_http_and_loopback(api: Any, make_account: Any, hooks: str,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    fake_dns: dict[str, list[str]]) -> None:
    monkeypatch.setenv("ALLOW_LOOPBACK_WEBHOOKS", "false")
    reset_caches()
    fake_dns["hooks.example.test"] = ["127.0.0.1"]
    token = make_account().token
    for url, why in (("http://hooks.example.test/", "https"), ("https://hooks.example.test/", "loopback"),
                     ("https://127.0.0.1:8443/", "loopback"), ("https://[::1]/", "loopback"),
                     ("https://unresolvable.invalid/", "does not resolve")):
        r = api.request("POST", "/api/webhooks", token, json={"url": url, "events": ["code.created"]})
        assert r.status == 400 and r.json()["field"] == "url" and why in r.json()["message"], (url, r.body)
    # PATCH checks the target again
    monkeypatch.setenv("ALLOW_LOOPBACK_WEBHOOKS", "true")
    reset_caches()
    wid = create_hook(api, token, "http://hooks.example.test:9/x")["id"]
    fake_dns["evil.example.test"] = ["169.254.169.254"]
    r = api.request("PATCH", f"/api/webhooks/{wid}", token, json={"url": "http://evil.example.test/"})
    assert r.status == 400 and r.json()["field"] == "url" and "metadata" in r.json()["message"]


def test_other_scopes_get_404_and_members_403(api: Any, make_account: Any, hooks: str, receiver: Receiver) -> None:
    owner, other = make_account("team"), make_account("business")
    wid = create_hook(api, owner.token, receiver.url())["id"]
    for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/test"), ("GET", "/deliveries"),
                         ("POST", "/rotate-secret")):
        r = api.request(method, f"/api/webhooks/{wid}{path}", other.token,
                        json={"active": False} if method == "PATCH" else None)
        assert (r.status, r.json()) == (404, {"error": "not_found", "message": MESSAGES["not_found"]}), (method, path)
    assert receiver.requests == []
    assert api.request("GET", "/api/webhooks", other.token).json() == {"webhooks": []}

    # team context: a member reads, cannot mutate; the admin can
    now = int(time.time())
    team_id = accounts.create_team(owner.user_id, "T", "team", now)
    member, admin = make_account("business"), make_account("business")
    accounts.add_member(team_id, member.user_id, "member", now)
    accounts.add_member(team_id, admin.user_id, "admin", now)
    for who in (member, admin):
        accounts.use_team(who.user_id, team_id)
    r = api.request("POST", "/api/webhooks", member.token, json={"url": receiver.url(), "events": ["code.created"]})
    assert (r.status, r.json()) == (403, {"error": "insufficient_role", "role": "member", "required": "admin",
                                          "message": MESSAGES["insufficient_role"]})
    team_hook = create_hook(api, admin.token, receiver.url())
    assert api.request("GET", "/api/webhooks", member.token).json()["webhooks"][0]["id"] == team_hook["id"]
    for method, path in (("PATCH", ""), ("DELETE", ""), ("POST", "/test"), ("POST", "/rotate-secret")):
        r = api.request(method, f"/api/webhooks/{team_hook['id']}{path}", member.token,
                        json={"active": False} if method == "PATCH" else None)
        assert r.status == 403 and r.json()["error"] == "insufficient_role", (method, path)
    assert raw_item(f"TEAM#{team_id}", f"WEBHOOK#{team_hook['id']}") is not None
    assert api.request("GET", "/api/webhooks", owner.token).json()["webhooks"][0]["id"] == wid  # personal scope


def test_idempotency_key_on_create(api: Any, make_account: Any, hooks: str, receiver: Receiver) -> None:
    acct = make_account()
    body = {"url": receiver.url(), "events": ["code.created"]}
    first = api.request("POST", "/api/webhooks", acct.token, json=body, headers={"Idempotency-Key": "k-1"})
    again = api.request("POST", "/api/webhooks", acct.token, json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status == again.status == 201 and first.body == again.body  # byte for byte
    assert first.json()["secret"].startswith("whsec_")  # the replay answers with the same secret
    assert len(api.request("GET", "/api/webhooks", acct.token).json()["webhooks"]) == 1
    stored = boto3.client("dynamodb").scan(TableName=os.environ["IDEMPOTENCY_TABLE_NAME"])["Items"]
    assert stored and "whsec_" not in json.dumps(stored)  # the stored response holds it sealed
    other = api.request("POST", "/api/webhooks", acct.token, json={**body, "description": "x"},
                        headers={"Idempotency-Key": "k-1"})
    assert other.status == 409 and other.json()["error"] == "idempotency_conflict"


# -- ping, deliveries, rotation ----------------------------------------------------------------


def test_ping_delivers_now_and_is_recorded(api: Any, make_account: Any, hooks: str, receiver: Receiver) -> None:
    acct = make_account()
    hook = create_hook(api, acct.token, receiver.url("/in?src=qr"), ["code.created"])
    r = api.request("POST", f"/api/webhooks/{hook['id']}/test", acct.token)
    assert r.status == 200, r.body
    record = r.json()
    assert set(record) == {"id", "event_id", "event_type", "attempt", "status_code", "error", "duration_ms", "at",
                           "next_retry_at"}
    assert record["event_type"] == "ping" and record["attempt"] == 1 and record["status_code"] == 200
    assert record["error"] is None and record["next_retry_at"] is None and record["duration_ms"] >= 0
    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    assert got.path == "/in?src=qr" and got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"] == record["event_id"]
    event = verify(hook["secret"], got)
    assert event == {"id": record["event_id"], "type": "ping", "created_at": event["created_at"],
                     "scope": {"type": "user"}, "data": {"webhook_id": hook["id"]}}
    listed = api.request("GET", f"/api/webhooks/{hook['id']}/deliveries", acct.token)
    assert listed.status == 200 and listed.json() == {"deliveries": [record]}
    stored = raw_item(f"WHDLV#{hook['id']}", f"{record['at']:012d}#{record['id']}")
    assert stored is not None and stored["ttl"] == record["at"] + 30 * 86_400


def test_failed_ping_stores_no_response_body(api: Any, make_account: Any, hooks: str) -> None:
    r500 = Receiver(default=500, answer_body=b"SECRET-BODY " * 500)
    try:
        acct = make_account()
        hook = create_hook(api, acct.token, r500.url())
        record = api.request("POST", f"/api/webhooks/{hook['id']}/test", acct.token).json()
        assert record["status_code"] == 500 and record["error"] == "HTTP 500 Internal Server Error"
        assert record["next_retry_at"] is None  # a test is one attempt
        stored = raw_item(f"WHDLV#{hook['id']}", f"{record['at']:012d}#{record['id']}")
        assert "SECRET-BODY" not in json.dumps(stored)
        # a test never changes the webhook's state
        assert api.request("GET", f"/api/webhooks/{hook['id']}", acct.token).json()["failure_count"] == 0
    finally:
        r500.stop()


def test_rotate_secret_signs_with_both_for_24_hours(api: Any, make_account: Any, hooks: str,
                                                    receiver: Receiver) -> None:
    acct = make_account()
    hook = create_hook(api, acct.token, receiver.url())
    r = api.request("POST", f"/api/webhooks/{hook['id']}/rotate-secret", acct.token)
    assert r.status == 200 and set(r.json()) == {"secret"}
    new = r.json()["secret"]
    assert new.startswith("whsec_") and new != hook["secret"]
    assert api.request("POST", f"/api/webhooks/{hook['id']}/test", acct.token).json()["status_code"] == 200
    got = receiver.requests[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    verify(new, got)
    verify(hook["secret"], got)
    stored = raw_item(f"USER#{acct.user_id}", f"WEBHOOK#{hook['id']}")
    assert stored is not None and "whsec_" not in json.dumps(stored)
    webhook = data.Webhook.from_item(stored)
    assert data.signing_secrets(webhook, int(time.time())) == [new, hook["secret"]]
    assert stored["previous_secret_sealed"] not in repr(webhook)
    assert stored["previous_until"] - int(time.time()) in range(86_400 - 60, 86_401)
    # after the overlap only the new secret signs
    overlap_over = replace(webhook, previous_until=int(time.time()) - 1)
    service.attempt(overlap_over, "evt-x", "ping", "{}", 1, schedule=(), count=False)
    assert len(receiver.requests[-1].headers["webhook-signature"].split(" ")) == 1
    verify(new, receiver.requests[-1])


def test_deliveries_list_is_the_last_100_newest_first(api: Any, make_account: Any, hooks: str,
                                                      receiver: Receiver) -> None:
    acct = make_account()
    hook = create_hook(api, acct.token, receiver.url())
    base = int(time.time()) - 1000
    for n in range(105):
        data.save_delivery(hook["id"], data.Delivery(
            id=str(uuid.uuid4()), event_id=f"e{n}", event_type="code.created", attempt=1, status_code=200,
            error=None, duration_ms=3, at=base + n, next_retry_at=None))
    got = api.request("GET", f"/api/webhooks/{hook['id']}/deliveries", acct.token).json()["deliveries"]
    assert len(got) == 100
    assert [d["event_id"] for d in got] == [f"e{n}" for n in range(104, 4, -1)]


# -- fan-out and delivery with retries ----------------------------------------------------------


def event_items() -> list[dict[str, Any]]:
    from qrpro.data.aws import ddb
    from qrpro.data.table import table

    out = ddb().scan(TableName=table(), FilterExpression="begins_with(pk, :p)",
                     ExpressionAttributeValues={":p": {"S": "EVENT#"}})
    return sorted(out["Items"], key=lambda i: int(i["created_at"]["N"]))


def stream_event(images: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": [{"eventID": str(n), "eventName": "INSERT", "eventVersion": "1.1", "eventSource":
                         "aws:dynamodb", "awsRegion": "us-east-1",
                         "dynamodb": {"Keys": {"pk": img["pk"], "sk": img["sk"]}, "NewImage": img,
                                      "SequenceNumber": str(100 + n), "StreamViewType": "NEW_IMAGE"},
                         "eventSourceARN": "arn:aws:dynamodb:us-east-1:0:table/t/stream/x"}
                        for n, img in enumerate(images)]}


class Queue:
    """What the SQS event source mapping does, step by step."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqs = boto3.client("sqs")

    def receive(self, wait: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            out = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           AttributeNames=["All"])
            if out.get("Messages"):
                return list(out["Messages"])
        return []

    def run(self, messages: list[dict[str, Any]]) -> set[str]:
        """Invoke the delivery function; delete what it did not report as failed."""
        from lambdas.webhooks.handler import handler
        from qrpro_cli.runtime import FakeContext

        event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                              "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": "",
                              "eventSource": "aws:sqs", "awsRegion": "us-east-1",
                              "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q"} for m in messages]}
        out = handler(event, FakeContext("webhooks", str(uuid.uuid4())))  # type: ignore[arg-type]
        failed = {f["itemIdentifier"] for f in out.get("batchItemFailures", [])}
        for m in messages:
            if m["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        return failed

    def depth(self) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def fan_out_all() -> dict[str, Any]:
    from lambdas.events.handler import handler
    from qrpro_cli.runtime import FakeContext

    out: dict[str, Any] = handler(stream_event(event_items()), FakeContext("events", "r"))  # type: ignore[arg-type]
    return out


def test_event_fans_out_to_subscribed_active_webhooks_only(api: Any, make_account: Any, hooks: str,
                                                           receiver: Receiver) -> None:
    acct, stranger = make_account(), make_account()
    wanted = create_hook(api, acct.token, receiver.url("/a"), ["code.created"])
    create_hook(api, acct.token, receiver.url("/b"), ["code.deleted"])  # not subscribed
    off = create_hook(api, acct.token, receiver.url("/c"), ["code.created"])
    api.request("PATCH", f"/api/webhooks/{off['id']}", acct.token, json={"active": False})
    create_hook(api, stranger.token, receiver.url("/d"), ["code.created"])  # another scope
    code = code_data.create(acct.caller(), {"url": "https://example.com/x", "label": "L"}, int(time.time()))

    assert fan_out_all() == {"batchItemFailures": []}
    queue = Queue(hooks)
    messages = queue.receive()
    assert len(messages) == 1
    msg = json.loads(messages[0]["Body"])
    assert msg["webhook_id"] == wanted["id"] and msg["event_type"] == "code.created"
    assert queue.run(messages) == set()
    assert [r.path for r in receiver.requests] == ["/a"]
    event = verify(wanted["secret"], receiver.requests[0])
    assert event["type"] == "code.created" and event["scope"] == {"type": "user"}
    assert event["id"] == msg["event_id"] == receiver.requests[0].headers["webhook-id"]
    assert event["data"] == {"code": {k: v for k, v in code.items() if k != "scans_30d"}}
    assert queue.depth() == 0


def test_failures_are_retried_with_the_same_webhook_id_then_succeed(api: Any, make_account: Any, hooks: str,
                                                                    receiver: Receiver) -> None:
    receiver.statuses = [500, 503, 429]  # three failures, then 200
    acct = make_account()
    hook = create_hook(api, acct.token, receiver.url(), ["code.created"])
    code_data.create(acct.caller(), {"url": "https://example.com/r"}, int(time.time()))
    fan_out_all()
    queue = Queue(hooks)
    for attempt in range(1, 5):
        messages = queue.receive()
        assert len(messages) == 1, f"attempt {attempt} never came"
        assert messages[0]["Attributes"]["ApproximateReceiveCount"] == str(attempt)
        failed = queue.run(messages)
        assert failed == ({messages[0]["MessageId"]} if attempt < 4 else set())
        assert len(receiver.requests) == attempt
    assert queue.depth() == 0  # delivered: nothing left to retry
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    bodies = {r.body for r in receiver.requests}
    assert len(ids) == 1 and len(bodies) == 1  # same id and bytes on every attempt
    for got in receiver.requests:
        assert verify(hook["secret"], got)["type"] == "code.created"
    records = api.request("GET", f"/api/webhooks/{hook['id']}/deliveries", acct.token).json()["deliveries"]
    assert [(d["attempt"], d["status_code"]) for d in records] == [(4, 200), (3, 429), (2, 503), (1, 500)]
    assert {d["event_id"] for d in records} == ids
    for d in records[1:]:
        assert d["next_retry_at"] - d["at"] == 1 and d["error"].startswith("HTTP ")
    assert records[0]["next_retry_at"] is None and records[0]["error"] is None
    assert api.request("GET", f"/api/webhooks/{hook['id']}", acct.token).json()["failure_count"] == 0


def test_410_disables_the_webhook(api: Any, make_account: Any, hooks: str, receiver: Receiver) -> None:
    receiver.default = 410
    acct = make_account()
    hook = create_hook(api, acct.token, receiver.url(), ["code.created", "code.updated"])
    code = code_data.create(acct.caller(), {"url": "https://example.com/g"}, int(time.time()))
    fan_out_all()
    queue = Queue(hooks)
    assert queue.run(queue.receive()) == set()  # not retried
    assert queue.depth() == 0
    now_hook = api.request("GET", f"/api/webhooks/{hook['id']}", acct.token).json()
    assert now_hook["active"] is False
    records = api.request("GET", f"/api/webhooks/{hook['id']}/deliveries", acct.token).json()["deliveries"]
    assert records[0]["status_code"] == 410 and records[0]["next_retry_at"] is None
    # a disabled webhook gets no new events
    code_data.update(acct.caller(), code["id"], {"label": "x"}, int(time.time()))
    assert data.subscribers(f"USER#{acct.user_id}", "code.updated") == []


def test_twenty_consecutive_failed_events_disable(api: Any, make_account: Any, hooks: str,
                                                  receiver: Receiver) -> None:
    receiver.default = 500
    acct = make_account()
    hook = create_hook(api, acct.token, receiver.url(), ["code.created"])
    scope = f"USER#{acct.user_id}"

    def event(n: int) -> data.Message:
        return data.Message(webhook_id=hook["id"], scope=scope, event_id=f"evt-{n}", event_type="code.created",
                            body=json.dumps({"n": n}))

    last = len(rules.BACKOFF) + 1
    # a failed attempt with retries left is not a failed event
    assert service.deliver(event(0), 1).retry_in == 1
    assert service.get(scope, hook["id"])["failure_count"] == 0
    for n in range(1, 11):
        assert service.deliver(event(n), last).retry_in is None  # schedule used up: the event failed
    assert service.get(scope, hook["id"])["failure_count"] == 10
    receiver.default = 200
    service.deliver(event(11), 1)  # a success resets the streak
    assert service.get(scope, hook["id"])["failure_count"] == 0
    receiver.default = 500
    for n in range(12, 31):
        service.deliver(event(n), last)
    state = service.get(scope, hook["id"])
    assert state["failure_count"] == 19 and state["active"] is True
    service.deliver(event(31), last)
    state = service.get(scope, hook["id"])
    assert state["failure_count"] == 20 and state["active"] is False
    sent = len(receiver.requests)
    assert service.deliver(event(32), 1).record is None and len(receiver.requests) == sent  # disabled: nothing sent
    # re-enabling resets the count
    r = api.request("PATCH", f"/api/webhooks/{hook['id']}", acct.token, json={"active": True})
    assert r.json()["active"] is True and r.json()["failure_count"] == 0


def test_a_deleted_webhook_drops_queued_retries(api: Any, make_account: Any, hooks: str,
                                                receiver: Receiver) -> None:
    receiver.default = 500
    acct = make_account()
    hook = create_hook(api, acct.token, receiver.url(), ["code.created"])
    code_data.create(acct.caller(), {"url": "https://example.com/d"}, int(time.time()))
    fan_out_all()
    queue = Queue(hooks)
    assert len(queue.run(queue.receive())) == 1
    api.request("DELETE", f"/api/webhooks/{hook['id']}", acct.token)
    assert queue.run(queue.receive()) == set()
    assert len(receiver.requests) == 1 and queue.depth() == 0


# -- the pinned-address client --------------------------------------------------------------------


def test_connects_to_the_checked_address_with_the_name_in_host(fake_dns: dict[str, list[str]],
                                                               receiver: Receiver,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name is resolved once; the connection goes to that address."""
    answers = [["127.0.0.1"], ["10.0.0.1"]]  # a rebinding server: loopback first, then internal
    asked: list[str] = []
    inner = socket.getaddrinfo  # the fake_dns fixture's

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.test":
            asked.append(host)
            fake_dns[host] = answers[min(len(asked) - 1, 1)]
        return inner(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    connected: list[Any] = []
    create = socket.create_connection

    def spy(address: Any, *args: Any, **kwargs: Any) -> Any:
        connected.append(address)
        return create(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", spy)
    out = delivery.post(receiver.url("/p", host="hooks.example.test"), b"{}", {"Content-Type": "application/json"},
                        allow_loopback=True)
    assert out.ok and out.status_code == 200
    assert asked == ["hooks.example.test"] and connected == [("127.0.0.1", receiver.port)]
    assert receiver.requests[0].headers["host"] == f"hooks.example.test:{receiver.port}"


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    bouncer = Receiver(default=302, extra_headers={"Location": receiver.url("/elsewhere")})
    try:
        out = delivery.post(bouncer.url(), b"{}", {}, allow_loopback=True)
        assert out.status_code == 302 and not out.ok
        assert out.error == "HTTP 302 Found (redirects are not followed)"
        assert receiver.requests == [] and len(bouncer.requests) == 1
    finally:
        bouncer.stop()


def test_timeout_and_refused_connection_are_failed_attempts() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts, never answers
    try:
        out = delivery.post(f"http://127.0.0.1:{silent.getsockname()[1]}/", b"{}", {}, allow_loopback=True,
                            timeout=0.5)
        assert out.status_code is None and out.error == "timeout after 0.5 s"
    finally:
        silent.close()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    out = delivery.post(f"http://127.0.0.1:{port}/", b"{}", {}, allow_loopback=True)
    assert out.status_code is None and out.error == "connection refused"


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_uses_sni_and_checks_the_certificate_for_the_name(tmp_path: Path,
                                                                fake_dns: dict[str, list[str]]) -> None:
    cert, key = _self_signed(tmp_path, "hooks.example.test")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    secure = Receiver(tls=server_ctx)
    try:
        fake_dns["hooks.example.test"] = ["127.0.0.1"]
        fake_dns["impostor.example.test"] = ["127.0.0.1"]
        trust = ssl.create_default_context(cafile=str(cert))
        out = delivery.post(secure.url("/s", host="hooks.example.test"), b"{}", {}, allow_loopback=True, tls=trust)
        assert out.ok, out.error
        assert secure.sni == ["hooks.example.test"]
        assert secure.requests[0].headers["host"] == f"hooks.example.test:{secure.port}"
        # same address, another name: the certificate does not match, nothing is sent
        out = delivery.post(secure.url("/s", host="impostor.example.test"), b"{}", {}, allow_loopback=True,
                            tls=trust)
        assert out.status_code is None and (out.error or "").startswith("TLS certificate rejected")
        # an untrusted certificate fails too (the default trust store)
        out = delivery.post(secure.url("/s", host="hooks.example.test"), b"{}", {}, allow_loopback=True)
        assert out.status_code is None and (out.error or "").startswith("TLS certificate rejected")
        assert len(secure.requests) == 1
    finally:
        secure.stop()
