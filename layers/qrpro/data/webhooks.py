"""Webhooks in the single table, their delivery records and the delivery queue
(docs/webhooks.md); the rules and use cases are ``qrpro.services.webhooks``.

Items: the webhook under its scope (``{scope}`` / ``WEBHOOK#{id}``, access
pattern 26; its signing secrets sealed, ``qrpro.domain.sealing``) and one
record per attempt (``WHDLV#{id}`` / ``{at:012d}#{delivery_id}``, TTL 30 days,
pattern 28). Queue messages carry the exact body that is signed,
so every retry of an event sends the same bytes with the same ``webhook-id``.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from qrpro.config import settings
from qrpro.data import keys as k
from qrpro.data.aws import client, ddb
from qrpro.data.secrets import webhook_key
from qrpro.data.table import (
    av,
    error_code,
    from_item,
    get_one,
    key,
    or_not_found,
    query_items,
    table,
    to_item,
    unavailable_on_throttle,
    update_if,
)
from qrpro.domain import sealing
from qrpro.domain import webhooks as rules
from qrpro.domain.errors import NotFound

PUBLIC_FIELDS = ("id", "url", "events", "description", "active", "created_at", "updated_at", "failure_count")
DELIVERY_FIELDS = ("id", "event_id", "event_type", "attempt", "status_code", "error", "duration_ms", "at",
                   "next_retry_at")


class NotQueued(Exception):
    """SQS refused some delivery messages: the caller's batch is retried (at least once)."""


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


def subscribers(scope: str, event_type: str) -> list[dict[str, Any]]:
    return [i for i in items_of(scope) if i.get("active") and event_type in (i.get("events") or [])]


def put_new(item: dict[str, Any]) -> None:
    with unavailable_on_throttle():
        ddb().put_item(TableName=table(), Item=to_item(item), ConditionExpression="attribute_not_exists(pk)")


def update(scope: str, webhook_id: str, changes: dict[str, Any], now: int, *, reset_failures: bool) -> dict[str, Any]:
    """SET the ``changes`` (url, events, description, active) and ``updated_at``; the new item (404 if gone)."""
    values: dict[str, Any] = {":now": now, **({":zero": 0} if reset_failures else {})}
    sets = ["updated_at = :now", *(["failure_count = :zero"] if reset_failures else [])]
    for name, value in changes.items():
        values[f":{name}"] = value
        sets.append(f"#{name} = :{name}")
    return or_not_found(update_if(
        Key=key(scope, k.sk_webhook(webhook_id)), ConditionExpression="attribute_exists(pk)", ReturnValues="ALL_NEW",
        UpdateExpression="SET " + ", ".join(sets), ExpressionAttributeNames={f"#{n}": n for n in changes},
        ExpressionAttributeValues={n: av(v) for n, v in values.items()}))


def delete(scope: str, webhook_id: str) -> None:
    try:
        with unavailable_on_throttle():
            ddb().delete_item(TableName=table(), Key=key(scope, k.sk_webhook(webhook_id)),
                              ConditionExpression="attribute_exists(pk)")
    except ClientError as err:
        if error_code(err) == "ConditionalCheckFailedException":
            raise NotFound() from err
        raise


def rotate(scope: str, webhook_id: str, old_sealed: str, new_sealed: str, until: int, now: int) -> bool:
    """Replace the secret if it is still ``old_sealed`` (False: another rotation won)."""
    return update_if(
        Key=key(scope, k.sk_webhook(webhook_id)),
        UpdateExpression="SET secret_sealed = :new, previous_secret_sealed = :old, "
                         "previous_until = :until, updated_at = :now",
        ConditionExpression="secret_sealed = :old",
        ExpressionAttributeValues={":new": av(new_sealed), ":old": av(old_sealed), ":until": av(until),
                                   ":now": av(now)}) is not None


def count_failure(item: dict[str, Any]) -> int | None:
    """One more failed event in a row: the new count (None: deleted meanwhile)."""
    out = update_if(Key=key(item["pk"], item["sk"]),
                    UpdateExpression="SET failure_count = if_not_exists(failure_count, :zero) + :one",
                    ConditionExpression="attribute_exists(pk)", ReturnValues="UPDATED_NEW",
                    ExpressionAttributeValues={":zero": av(0), ":one": av(1)})
    return None if out is None else int(out.get("failure_count", 0))


def disable(item: dict[str, Any], now: int) -> None:
    update_if(Key=key(item["pk"], item["sk"]), UpdateExpression="SET active = :false, updated_at = :now",
              ConditionExpression="attribute_exists(pk)",
              ExpressionAttributeValues={":false": av(False), ":now": av(now)})


def reset_failures(item: dict[str, Any]) -> None:
    update_if(Key=key(item["pk"], item["sk"]), UpdateExpression="SET failure_count = :zero",
              ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues={":zero": av(0)})


# -- delivery records and the delivery queue -------------------------------------------------

def save_delivery(webhook_id: str, record: dict[str, Any]) -> None:
    item = {**record, "pk": k.pk_deliveries(webhook_id), "sk": k.sk_delivery(record["at"], record["id"]),
            "type": "delivery", "webhook_id": webhook_id, k.TTL: record["at"] + rules.DELIVERY_TTL}
    with unavailable_on_throttle():
        ddb().put_item(TableName=table(), Item=to_item(item))


def deliveries(webhook_id: str, now: int) -> list[dict[str, Any]]:
    """The last 100 attempts, newest first (pattern 28)."""
    with unavailable_on_throttle():
        out = ddb().query(TableName=table(), KeyConditionExpression="pk = :pk", ScanIndexForward=False,
                          Limit=rules.DELIVERIES_LISTED,
                          ExpressionAttributeValues={":pk": av(k.pk_deliveries(webhook_id))})
    items = [from_item(raw) or {} for raw in out.get("Items", [])]
    return [{name: i.get(name) for name in DELIVERY_FIELDS} for i in items if int(i.get(k.TTL, now + 1)) > now]


def queue(bodies: list[str]) -> None:
    """Send delivery messages, ten per SQS call; ``NotQueued`` if any was refused."""
    for start in range(0, len(bodies), 10):
        chunk = bodies[start:start + 10]
        entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(chunk)]
        out = client("sqs").send_message_batch(QueueUrl=settings().webhooks_queue_url, Entries=entries)
        if out.get("Failed"):
            raise NotQueued(f"{len(out['Failed'])} webhook deliveries could not be queued")
