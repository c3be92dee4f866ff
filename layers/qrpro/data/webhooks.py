"""Webhooks in the single table, their delivery records, the fan-out of outbox
events to the delivery queue, and one delivery attempt (see docs/webhooks.md).

Items: the webhook under its scope (``{scope}`` / ``WEBHOOK#{id}``, access
pattern 26; its signing secrets sealed, ``qrpro.domain.sealing``) and one
record per attempt (``WHDLV#{id}`` / ``{at:012d}#{delivery_id}``, TTL 30 days,
pattern 28). Queue messages carry the exact body that is signed,
so every retry of an event sends the same bytes with the same ``webhook-id``.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from qrpro.config import settings
from qrpro.data import delivery
from qrpro.data import keys as k
from qrpro.data.aws import client, ddb
from qrpro.data.codes import scope_json
from qrpro.data.secrets import webhook_key
from qrpro.data.table import (
    Retry,
    av,
    error_code,
    from_item,
    get_one,
    key,
    or_not_found,
    query_items,
    retrying,
    table,
    to_item,
    unavailable_on_throttle,
    update_if,
)
from qrpro.domain import sealing
from qrpro.domain import webhooks as rules
from qrpro.domain.errors import NotFound, ValidationFailed
from qrpro.domain.scope import Caller

PUBLIC_FIELDS = ("id", "url", "events", "description", "active", "created_at", "updated_at", "failure_count")
DELIVERY_FIELDS = ("id", "event_id", "event_type", "attempt", "status_code", "error", "duration_ms", "at",
                   "next_retry_at")
BACKOFF_ENV = "QRPRO_WEBHOOK_BACKOFF"  # tests only: a shortened schedule ("1,1,1"); never set in AWS


def backoff_schedule() -> tuple[int, ...]:
    """The retry delays: the API's, unless a test stack shortens them."""
    return rules.parse_schedule(os.environ.get(BACKOFF_ENV))


def _seal_context(scope: str, webhook_id: str) -> str:
    return f"webhook:{scope}:{webhook_id}"


def seal_secret(scope: str, webhook_id: str, secret: str) -> str:
    return sealing.seal(webhook_key(), secret, _seal_context(scope, webhook_id))


def signing_secrets(webhook: dict[str, Any], now: int) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during
    the 24 h after a rotation (opened from the item's sealed values)."""
    context = _seal_context(webhook["pk"], webhook["id"])
    plain: dict[str, Any] = {"secret": sealing.unseal(webhook_key(), webhook["secret_sealed"], context),
                             "previous_until": webhook.get("previous_until")}
    if webhook.get("previous_secret_sealed") and int(webhook.get("previous_until") or 0) > now:
        plain["previous_secret"] = sealing.unseal(webhook_key(), webhook["previous_secret_sealed"], context)
    return rules.signing_secrets(plain, now)


def public(item: dict[str, Any]) -> dict[str, Any]:
    """The webhook object: never the secret."""
    out = {name: item.get(name) for name in PUBLIC_FIELDS}
    out["description"] = item.get("description") or ""
    out["failure_count"] = int(item.get("failure_count") or 0)
    out["active"] = bool(item.get("active"))
    return out


def _check_target(url: str) -> str:
    try:
        delivery.check_target(url, settings().allow_loopback_webhooks)
    except delivery.TargetRefused as err:
        raise ValidationFailed("url", str(err)) from err
    return url


# -- webhooks ----------------------------------------------------------------------

def get_item(scope: str, webhook_id: str) -> dict[str, Any] | None:
    return get_one(scope, k.sk_webhook(webhook_id))


def items_of(scope: str) -> list[dict[str, Any]]:
    """Every webhook of a scope (pattern 26)."""
    params: dict[str, Any] = {
        "TableName": table(), "ConsistentRead": True,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
        "ExpressionAttributeValues": {":pk": av(scope), ":p": av("WEBHOOK#")}}
    return list(query_items(params))


def list_webhooks(scope: str) -> list[dict[str, Any]]:
    """Newest first."""
    items = sorted(items_of(scope), key=lambda i: (int(i.get("created_at", 0)), i["id"]), reverse=True)
    return [public(i) for i in items]


def get(scope: str, webhook_id: str) -> dict[str, Any]:
    return public(or_not_found(get_item(scope, webhook_id)))


def create(caller: Caller, url: str, events: list[str], description: str | None, now: int) -> dict[str, Any]:
    """A webhook; the answer is the only place its secret is ever shown."""
    _check_target(url)
    webhook_id, secret = str(uuid.uuid4()), rules.new_secret()
    item = {"pk": caller.scope, "sk": k.sk_webhook(webhook_id), "type": "webhook", "id": webhook_id, "url": url,
            "events": list(events), "description": description or "", "active": True,
            "secret_sealed": seal_secret(caller.scope, webhook_id, secret), "failure_count": 0,
            "created_at": now, "updated_at": now, "created_by": caller.user_id}
    with unavailable_on_throttle():
        ddb().put_item(TableName=table(), Item=to_item(item), ConditionExpression="attribute_not_exists(pk)")
    return {**public(item), "secret": secret}


def _conditional_update(scope: str, webhook_id: str, **update: Any) -> dict[str, Any]:
    return or_not_found(update_if(Key=key(scope, k.sk_webhook(webhook_id)), ConditionExpression="attribute_exists(pk)",
                                  ReturnValues="ALL_NEW", **update))


def update(scope: str, webhook_id: str, changes: dict[str, Any], now: int) -> dict[str, Any]:
    """PATCH: url (checked again), events, description, active. Re-enabling resets ``failure_count``."""
    if not changes:
        return get(scope, webhook_id)
    if "url" in changes:
        _check_target(changes["url"])
    values: dict[str, Any] = {":now": now}
    sets = ["updated_at = :now"]
    for name in ("url", "events", "description", "active"):
        if name in changes:
            value = changes[name]
            if name == "description":
                value = value or ""
            values[f":{name}"] = value
            sets.append(f"#{name} = :{name}")
    if changes.get("active") is True:
        sets.append("failure_count = :zero")
        values[":zero"] = 0
    names = {f"#{n}": n for n in ("url", "events", "description", "active") if n in changes}
    item = _conditional_update(scope, webhook_id, UpdateExpression="SET " + ", ".join(sets),
                               ExpressionAttributeNames=names,
                               ExpressionAttributeValues={n: av(v) for n, v in values.items()})
    return public(item)


def delete(scope: str, webhook_id: str) -> dict[str, Any]:
    """Removes the webhook; queued retries find it gone and stop. Its delivery records expire (TTL)."""
    try:
        with unavailable_on_throttle():
            ddb().delete_item(TableName=table(), Key=key(scope, k.sk_webhook(webhook_id)),
                              ConditionExpression="attribute_exists(pk)")
    except ClientError as err:
        if error_code(err) == "ConditionalCheckFailedException":
            raise NotFound() from err
        raise
    return {"id": webhook_id, "deleted": True}


def rotate_secret(scope: str, webhook_id: str, now: int) -> dict[str, Any]:
    """A new secret; the previous one keeps signing (second signature) for 24 h."""
    def attempt() -> dict[str, Any]:
        item = or_not_found(get_item(scope, webhook_id))
        secret = rules.new_secret()
        rotated = update_if(
            Key=key(scope, k.sk_webhook(webhook_id)),
            UpdateExpression="SET secret_sealed = :new, previous_secret_sealed = :old, "
                             "previous_until = :until, updated_at = :now",
            # Two rotations at once: one wins, the other reads again.
            ConditionExpression="secret_sealed = :old",
            ExpressionAttributeValues={":new": av(seal_secret(scope, webhook_id, secret)),
                                       ":old": av(item["secret_sealed"]),
                                       ":until": av(now + rules.ROTATION_OVERLAP), ":now": av(now)})
        if rotated is None:
            raise Retry()
        return {"secret": secret}

    return retrying(attempt, attempts=5, busy="the webhook kept changing; retry")


def _record_failure(item: dict[str, Any], now: int) -> None:
    """One more failed event in a row; the 20th disables the webhook."""
    out = update_if(Key=key(item["pk"], item["sk"]),
                    UpdateExpression="SET failure_count = if_not_exists(failure_count, :zero) + :one",
                    ConditionExpression="attribute_exists(pk)", ReturnValues="UPDATED_NEW",
                    ExpressionAttributeValues={":zero": av(0), ":one": av(1)})
    if out is not None and int(out.get("failure_count", 0)) >= rules.MAX_CONSECUTIVE_FAILURES:
        _disable(item, now)  # (None: deleted meanwhile)


def _disable(item: dict[str, Any], now: int) -> None:
    update_if(Key=key(item["pk"], item["sk"]), UpdateExpression="SET active = :false, updated_at = :now",
              ConditionExpression="attribute_exists(pk)",
              ExpressionAttributeValues={":false": av(False), ":now": av(now)})


def _record_success(item: dict[str, Any]) -> None:
    if not int(item.get("failure_count") or 0):
        return  # the common case costs no write
    update_if(Key=key(item["pk"], item["sk"]), UpdateExpression="SET failure_count = :zero",
              ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues={":zero": av(0)})


# -- delivery records ------------------------------------------------------------------------

def _save_delivery(webhook_id: str, record: dict[str, Any]) -> None:
    item = {**record, "pk": k.pk_deliveries(webhook_id), "sk": k.sk_delivery(record["at"], record["id"]),
            "type": "delivery", "webhook_id": webhook_id, k.TTL: record["at"] + rules.DELIVERY_TTL}
    with unavailable_on_throttle():
        ddb().put_item(TableName=table(), Item=to_item(item))


def deliveries(scope: str, webhook_id: str, now: int) -> list[dict[str, Any]]:
    """The last 100 attempts, newest first (pattern 28)."""
    or_not_found(get_item(scope, webhook_id))
    with unavailable_on_throttle():
        out = ddb().query(TableName=table(), KeyConditionExpression="pk = :pk", ScanIndexForward=False,
                          Limit=rules.DELIVERIES_LISTED,
                          ExpressionAttributeValues={":pk": av(k.pk_deliveries(webhook_id))})
    items = [from_item(raw) or {} for raw in out.get("Items", [])]
    return [{name: i.get(name) for name in DELIVERY_FIELDS} for i in items if int(i.get(k.TTL, now + 1)) > now]


# -- fan-out: outbox event -> one queue message per subscribed webhook -----------------------

def message(webhook_id: str, scope: str, event: dict[str, Any]) -> dict[str, Any]:
    return {"webhook_id": webhook_id, "scope": scope, "event_id": event["id"], "event_type": event["type"],
            "body": rules.body(event)}


def event_payload(event_item: dict[str, Any]) -> dict[str, Any]:
    """The delivered payload of an outbox ``EVENT#`` item."""
    return rules.payload(event_item["id"], event_item["event_type"], int(event_item["created_at"]),
                         scope_json(event_item["scope"]), event_item.get("data") or {})


def subscribers(scope: str, event_type: str) -> list[dict[str, Any]]:
    return [i for i in items_of(scope) if i.get("active") and event_type in (i.get("events") or [])]


def fan_out(event_item: dict[str, Any]) -> int:
    """Queue one delivery per active webhook of the event's scope subscribed to its type.
    Raises if any message could not be queued (the stream batch is retried: at least once)."""
    event = event_payload(event_item)
    bodies = [json.dumps(message(w["id"], event_item["scope"], event))
              for w in subscribers(event_item["scope"], event_item["event_type"])]
    queue_url = settings().webhooks_queue_url
    for start in range(0, len(bodies), 10):
        chunk = bodies[start:start + 10]
        out = client("sqs").send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(n), "MessageBody": b} for n, b in enumerate(chunk)])
        if out.get("Failed"):
            raise RuntimeError(f"{len(out['Failed'])} webhook deliveries could not be queued")
    return len(bodies)


# -- one attempt ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    record: dict[str, Any] | None  # None: nothing was sent (webhook gone, disabled, unsubscribed)
    retry_in: int | None  # seconds until the next attempt, None when done


def attempt(webhook: dict[str, Any], event_id: str, event_type: str, body: str, number: int, *,
            schedule: Sequence[int], now: Callable[[], float] = time.time,
            rand: Callable[[float, float], float] = random.uniform, count: bool = True) -> Outcome:
    """Sign and send once; record the attempt; settle the webhook's state.

    ``count=False`` (the test ping) leaves ``failure_count`` and ``active`` alone.
    """
    at = int(now())
    headers = rules.headers(event_id, at, body, signing_secrets(webhook, at))
    result = delivery.post(webhook["url"], body.encode("utf-8"), headers,
                           allow_loopback=settings().allow_loopback_webhooks)
    retry_in = None
    if count and not result.ok and not rules.gone(result.status_code):
        retry_in = rules.retry_delay(number, schedule, rand)
    record = {"id": str(uuid.uuid4()), "event_id": event_id, "event_type": event_type, "attempt": number,
              "status_code": result.status_code, "error": result.error, "duration_ms": result.duration_ms,
              "at": at, "next_retry_at": None if retry_in is None else at + retry_in}
    _save_delivery(webhook["id"], record)
    if count:
        if result.ok:
            _record_success(webhook)
        elif rules.gone(result.status_code):
            _disable(webhook, at)
        elif retry_in is None:
            _record_failure(webhook, at)
    return Outcome(record, retry_in)


def deliver(msg: dict[str, Any], number: int, schedule: Sequence[int] | None = None) -> Outcome:
    """Attempt ``number`` (1-based) of a queued delivery. Nothing is sent when the
    webhook was deleted, disabled or unsubscribed from the type meanwhile."""
    webhook = get_item(msg["scope"], msg["webhook_id"])
    if webhook is None or not webhook.get("active") or msg["event_type"] not in (webhook.get("events") or []):
        return Outcome(None, None)
    return attempt(webhook, msg["event_id"], msg["event_type"], msg["body"], number,
                   schedule=backoff_schedule() if schedule is None else schedule)


def ping(scope: str, webhook_id: str, now: int) -> dict[str, Any]:
    """POST /api/webhooks/{id}/test: one signed ``ping`` now; the delivery record."""
    webhook = or_not_found(get_item(scope, webhook_id))
    event = rules.payload(str(uuid.uuid4()), rules.PING, now, scope_json(scope), {"webhook_id": webhook_id})
    out = attempt(webhook, event["id"], rules.PING, rules.body(event), 1, schedule=(), count=False)
    assert out.record is not None
    return out.record
