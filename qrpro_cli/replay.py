"""`qrpro admin replay-failed-events`: re-drive the outbox events whose fan-out was given up on.

The events stream mapping writes each batch it gives up on (10 retries spent, or records older
than 24 h) to the failed-events bucket: one object per batch, Lambda's invocation record with the
whole stream records as ``payload`` (infra/constructs/jobs.py). This reads every object, takes the
``EVENT#`` items inserted in them and does what the events function would have done: one delivery
message per webhook subscribed to the event now (``qrpro.services.webhooks.replay``), with the
same ``webhook-id`` and body. Dry run by default; ``--apply`` queues. Replaying twice queues each
delivery once (the replay ledger). Objects stay in the bucket (they expire after 90 days).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3

from qrpro.data.outbox import Event
from qrpro.data.table import from_item


def failed_batches(bucket: str) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """(key, invocation record) of every object of the bucket, oldest key first; None if unreadable."""
    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            try:
                record = json.loads(body)
            except ValueError:
                record = None
            yield obj["Key"], record if isinstance(record, dict) else None


def outbox_events(record: dict[str, Any]) -> list[Event] | None:
    """The outbox events of one failed batch (its inserted ``EVENT#`` items), or None if the
    record carries no stream records."""
    payload = record.get("payload")
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    if not isinstance(payload, dict) or not isinstance(payload.get("Records"), list):
        return None
    events = []
    for stream_record in payload["Records"]:
        if stream_record.get("eventName") != "INSERT":
            continue
        item = from_item((stream_record.get("dynamodb") or {}).get("NewImage"))
        event = Event.from_item(item) if item else None
        if event is not None:
            events.append(event)
    return events


def replay(bucket: str, *, apply: bool, now: int) -> dict[str, Any]:
    """Every failed batch of ``bucket`` replayed (or, without ``apply``, what replaying would queue)."""
    from qrpro.services import webhooks

    deliveries: list[dict[str, Any]] = []
    unreadable: list[str] = []
    objects = events = 0
    for key, record in failed_batches(bucket):
        objects += 1
        found = outbox_events(record) if record is not None else None
        if found is None:
            unreadable.append(key)
            continue
        for event in found:
            events += 1
            deliveries += [{"object": key, "event_id": event.id, "event_type": event.event_type,
                            "webhook_id": webhook_id, "status": status}
                           for webhook_id, status in webhooks.replay(event, apply=apply, now=now)]
    counts = {status: sum(d["status"] == status for d in deliveries)
              for status in ("queued", "would_queue", "already_replayed")}
    return {"bucket": bucket, "applied": apply, "objects": objects, "events": events, **counts,
            "deliveries": deliveries, "unreadable": unreadable}
