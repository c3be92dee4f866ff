"""Driving scans through the real functions in process: the redirect (payload 2.0
events), the scans aggregator (SQS events in batches, as the event source
mapping forms them), the compaction (every open day folded to the counter's
current value) and the mail function, against DynamoDB Local and moto."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3

from lambdas.mail import handler as mail
from lambdas.redirect import handler as redirect
from lambdas.scans import handler as consumer
from qrpro.data import edge, panes
from qrpro.data import keys as k
from qrpro.data import table as tables
from qrpro.domain.scan_codec import Job
from qrpro.services import scans as scan_service
from qrpro_cli.runtime import FakeContext

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
IPAD = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
SLACK = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
FACEBOOK = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
GOOGLE = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SECRET_UA = "Mozilla/5.0 (iPhone) Sentinel-UA-7f3a9"
SECRET_IP = "203.0.113.77"
SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


def v2(path: str, method: str = "GET", headers: dict[str, str] | None = None) -> dict[str, Any]:
    """What a Lambda function URL behind CloudFront sends (payload 2.0)."""
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
            "headers": {name.lower(): v for name, v in (headers or {}).items()},
            "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                        "sourceIp": SECRET_IP, "userAgent": SECRET_UA}},
            "isBase64Encoded": False}


def scan(shortcode: str, ua: str = IPHONE, country: str | None = "US", method: str = "GET") -> dict[str, Any]:
    headers = {"User-Agent": ua, "X-Forwarded-For": SECRET_IP}
    if country is not None:
        headers["CloudFront-Viewer-Country"] = country
    return dict(redirect.handler(v2(f"/{shortcode}", method, headers), None))


def receive_all(url: str) -> list[dict[str, Any]]:
    """Every message once, with its attributes (SQS is at-least-once: a slow run can see one again)."""
    sqs = boto3.client("sqs")
    out: dict[str, dict[str, Any]] = {}
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                  AttributeNames=["All"]).get("Messages", [])
        if not got:
            return list(out.values())
        out.update((m["MessageId"], m) for m in got)
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])


def everything_sent(url: str) -> list[dict[str, Any]]:
    """Every scan the redirects of this process sent, wherever a loaded machine left it: on the
    queue (a send that timed out but landed is there twice, the same scan), parked in DynamoDB
    (taken out here), or buffered in memory for the next send (taken too)."""
    out = receive_all(url)
    client = boto3.client("dynamodb")
    for shard in range(edge.PENDING_SHARDS):
        for raw in client.query(TableName=tables.table(), KeyConditionExpression="pk = :pk", ConsistentRead=True,
                                ExpressionAttributeValues={":pk": {"S": k.pk_pending(shard)}})["Items"]:
            out.append({"MessageId": str(uuid.uuid4()), "Body": raw["scan"]["S"]})
            client.delete_item(TableName=tables.table(), Key={"pk": raw["pk"], "sk": raw["sk"]})
    out += [{"MessageId": str(uuid.uuid4()), "Body": body} for body in edge._unsent]
    edge._unsent.clear()
    return out


def records(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The SQS event of ``messages``; a message without ``Attributes`` (made up by a test) carries
    none, like one whose SentTimestamp is unknown."""
    return {"Records": [{"messageId": m["MessageId"], "receiptHandle": m.get("ReceiptHandle", "h"),
                         "body": m["Body"], "attributes": m.get("Attributes", {}), "messageAttributes": {},
                         "eventSource": "aws:sqs"} for m in messages]}


def run_consumer(messages: list[dict[str, Any]], batch: int = 10) -> list[str]:
    """Deliver in batches like the event source mapping; returns the failed message ids."""
    failed: list[str] = []
    for i in range(0, len(messages), batch):
        out = consumer.handler(records(messages[i:i + batch]), FakeContext("scans", "r0"))
        failed += [f["itemIdentifier"] for f in out["batchItemFailures"]]
    return failed


def counter() -> int:
    """The panes' sequence counter now: in a test nothing is being written, so it is settled."""
    item = boto3.client("dynamodb").get_item(TableName=tables.table(), Key={"pk": {"S": k.SEQ}, "sk": {"S": k.SEQ}},
                                             ConsistentRead=True).get("Item", {})
    return int(item.get("n", {}).get("N", 0))


def fold_all(now: int | None = None) -> int:
    """What the fan-out and the compaction do: every open day folded to the counter's value (and
    closed when it ended long enough ago). Returns the scans folded."""
    now = now or int(time.time())
    fence = counter()
    return sum(scan_service.fold(Job(m.scope, m.day, fence), now, eager=True).scans for m in panes.open_marks())


def count(messages: list[dict[str, Any]], batch: int = 10) -> list[str]:
    """The aggregator, then the compaction: the failed message ids."""
    failed = run_consumer(messages, batch)
    fold_all()
    return failed


def get(pk: str, sk: str) -> dict[str, Any]:
    out = boto3.client("dynamodb").get_item(TableName=tables.table(), Key={"pk": {"S": pk}, "sk": {"S": sk}},
                                            ConsistentRead=True)
    return tables.from_item(out.get("Item")) or {}


def all_items() -> list[dict[str, Any]]:
    client, out, params = boto3.client("dynamodb"), [], {"TableName": tables.table()}
    while True:
        page = client.scan(**params)
        out += [tables.from_item(i) or {} for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return out
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def items(prefix: str) -> list[dict[str, Any]]:
    return [i for i in all_items() if str(i["pk"]).startswith(prefix)]


def messages_for(code_id: str, n: int, scope: str = "USER#u", plan_name: str = "business",
                 now: int | None = None, country: str = "US", device: str = "mobile") -> list[dict[str, Any]]:
    now = now or int(time.time())
    return [{"MessageId": str(uuid.uuid4()),
             "Body": edge.scan_message(code_id, scope, plan_name, now, country, device)} for _ in range(n)]


def day_total(code_id: str, day: str) -> int:
    return int(get(k.pk_code_agg(code_id), k.sk_day(day)).get("total", 0))


def sent_to(address: str) -> list[Any]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return [m for m in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
            if address in (getattr(m, "destinations", {}) or {}).get("ToAddresses", [])]


def events_of(scope: str) -> list[dict[str, Any]]:
    return [i for i in all_items() if i["pk"].startswith("EVENT#") and i.get("scope") == scope
            and i.get("event_type") == "scans.cap_reached"]


def mail_cap_events(scope: str) -> dict[str, Any]:
    """What the events function and the mail queue do with the scope's cap events: the mail
    function's answer for them."""
    bodies = [json.dumps({"scope": scope, **e["data"]}) for e in events_of(scope)]
    event = {"Records": [{"messageId": str(uuid.uuid4()), "receiptHandle": "h", "body": b, "attributes": {},
                          "messageAttributes": {}, "eventSource": "aws:sqs"} for b in bodies]}
    return dict(mail.handler(event, FakeContext("mail", "m0"))) if bodies else {"batchItemFailures": []}
