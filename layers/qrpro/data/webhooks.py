"""Webhooks in the single table, their delivery records and the delivery queue
(docs/webhooks.md); the rules and use cases are ``qrpro.services.webhooks``.

Items: the webhook under its scope (``{scope}`` / ``WEBHOOK#{id}``, access
pattern 26; its signing secrets sealed, ``qrpro.domain.sealing``) and one
record per attempt (``WHDLV#{id}`` / ``{at:012d}#{delivery_id}``, TTL 30 days,
pattern 28). The repository takes and returns them typed (``Webhook``,
``Delivery``); a ``Webhook`` holds its secrets sealed, and only
``signing_secrets`` opens them. Queue messages (``Message``) carry the exact
body that is signed, so every retry of an event sends the same bytes with the
same ``webhook-id``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
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


@dataclass(frozen=True)
class Webhook:
    """A stored webhook; ``scope`` is its partition. Its secrets stay sealed here
    (``signing_secrets`` opens them to sign) and out of the repr all the same."""

    scope: str
    id: str
    url: str
    events: tuple[str, ...]
    secret_sealed: str = field(repr=False)
    description: str = ""
    active: bool = True
    failure_count: int = 0
    created_at: int = 0
    updated_at: int = 0
    created_by: str | None = None
    previous_secret_sealed: str | None = field(default=None, repr=False)
    previous_until: int | None = None  # the previous secret signs until then (a rotation's overlap)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Webhook:
        until = item.get("previous_until")
        return cls(scope=item["pk"], id=item["id"], url=item["url"], events=tuple(item.get("events") or ()),
                   secret_sealed=item["secret_sealed"], description=item.get("description") or "",
                   active=bool(item.get("active")), failure_count=int(item.get("failure_count") or 0),
                   created_at=int(item.get("created_at", 0)), updated_at=int(item.get("updated_at", 0)),
                   created_by=item.get("created_by"), previous_secret_sealed=item.get("previous_secret_sealed"),
                   previous_until=None if until is None else int(until))

    def item(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "scope"}
        return {"pk": self.scope, "sk": k.sk_webhook(self.id), "type": "webhook", **data,
                "events": list(self.events)}

    def public(self) -> dict[str, Any]:
        """The webhook object of docs/api.md section 10: never a secret."""
        out = {name: getattr(self, name) for name in PUBLIC_FIELDS}
        out["events"] = list(self.events)
        return out


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt; the fields in the order of the API's delivery record."""

    id: str
    event_id: str
    event_type: str
    attempt: int
    status_code: int | None  # None: no answer came (timeout, refused)
    error: str | None
    duration_ms: int | None
    at: int
    next_retry_at: int | None  # None: no further attempt

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Delivery:
        values: dict[str, Any] = {f.name: item.get(f.name) for f in fields(cls)}
        return cls(**values)

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Message:
    """One queued delivery of one event to one webhook. ``body`` is the exact
    payload that is signed, so every retry sends the same bytes."""

    webhook_id: str
    scope: str
    event_id: str
    event_type: str
    body: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Message:
        data = json.loads(text)
        return cls(**{f.name: data[f.name] for f in fields(cls)})


class NotQueued(Exception):
    """SQS refused some delivery messages: the caller's batch is retried (at least once)."""


def _seal_context(scope: str, webhook_id: str) -> str:
    return f"webhook:{scope}:{webhook_id}"


def seal_secret(scope: str, webhook_id: str, secret: str) -> str:
    return sealing.seal(webhook_key(), secret, _seal_context(scope, webhook_id))


def signing_secrets(webhook: Webhook, now: int) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during
    the 24 h after a rotation (opened from the sealed values)."""
    context = _seal_context(webhook.scope, webhook.id)
    plain: dict[str, Any] = {"secret": sealing.unseal(webhook_key(), webhook.secret_sealed, context),
                             "previous_until": webhook.previous_until}
    if webhook.previous_secret_sealed and int(webhook.previous_until or 0) > now:
        plain["previous_secret"] = sealing.unseal(webhook_key(), webhook.previous_secret_sealed, context)
    return rules.signing_secrets(plain, now)


# -- webhooks ----------------------------------------------------------------------

def _key(webhook: Webhook) -> dict[str, Any]:
    return key(webhook.scope, k.sk_webhook(webhook.id))


def get_item(scope: str, webhook_id: str) -> Webhook | None:
    item = get_one(scope, k.sk_webhook(webhook_id))
    return None if item is None else Webhook.from_item(item)


def items_of(scope: str) -> list[Webhook]:
    """Every webhook of a scope (pattern 26)."""
    params: dict[str, Any] = {
        "TableName": table(), "ConsistentRead": True,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
        "ExpressionAttributeValues": {":pk": av(scope), ":p": av("WEBHOOK#")}}
    return [Webhook.from_item(i) for i in query_items(params)]


def subscribers(scope: str, event_type: str) -> list[Webhook]:
    return [w for w in items_of(scope) if w.active and event_type in w.events]


def put_new(webhook: Webhook) -> None:
    with unavailable_on_throttle():
        ddb().put_item(TableName=table(), Item=to_item(webhook.item()), ConditionExpression="attribute_not_exists(pk)")


def update(scope: str, webhook_id: str, changes: dict[str, Any], now: int, *, reset_failures: bool) -> Webhook:
    """SET the ``changes`` (url, events, description, active) and ``updated_at``; the new webhook (404 if gone)."""
    values: dict[str, Any] = {":now": now, **({":zero": 0} if reset_failures else {})}
    sets = ["updated_at = :now", *(["failure_count = :zero"] if reset_failures else [])]
    for name, value in changes.items():
        values[f":{name}"] = value
        sets.append(f"#{name} = :{name}")
    return Webhook.from_item(or_not_found(update_if(
        Key=key(scope, k.sk_webhook(webhook_id)), ConditionExpression="attribute_exists(pk)", ReturnValues="ALL_NEW",
        UpdateExpression="SET " + ", ".join(sets), ExpressionAttributeNames={f"#{n}": n for n in changes},
        ExpressionAttributeValues={n: av(v) for n, v in values.items()})))


def delete(scope: str, webhook_id: str) -> None:
    try:
        with unavailable_on_throttle():
            ddb().delete_item(TableName=table(), Key=key(scope, k.sk_webhook(webhook_id)),
                              ConditionExpression="attribute_exists(pk)")
    except ClientError as err:
        if error_code(err) == "ConditionalCheckFailedException":
            raise NotFound() from err
        raise


def rotate(webhook: Webhook, new_sealed: str, until: int, now: int) -> bool:
    """Replace the secret if it is still the one ``webhook`` was read with (False: another rotation won)."""
    return update_if(
        Key=_key(webhook),
        UpdateExpression="SET secret_sealed = :new, previous_secret_sealed = :old, "
                         "previous_until = :until, updated_at = :now",
        ConditionExpression="secret_sealed = :old",
        ExpressionAttributeValues={":new": av(new_sealed), ":old": av(webhook.secret_sealed), ":until": av(until),
                                   ":now": av(now)}) is not None


def count_failure(webhook: Webhook) -> int | None:
    """One more failed event in a row: the new count (None: deleted meanwhile)."""
    out = update_if(Key=_key(webhook),
                    UpdateExpression="SET failure_count = if_not_exists(failure_count, :zero) + :one",
                    ConditionExpression="attribute_exists(pk)", ReturnValues="UPDATED_NEW",
                    ExpressionAttributeValues={":zero": av(0), ":one": av(1)})
    return None if out is None else int(out.get("failure_count", 0))


def disable(webhook: Webhook, now: int) -> None:
    update_if(Key=_key(webhook), UpdateExpression="SET active = :false, updated_at = :now",
              ConditionExpression="attribute_exists(pk)",
              ExpressionAttributeValues={":false": av(False), ":now": av(now)})


def reset_failures(webhook: Webhook) -> None:
    update_if(Key=_key(webhook), UpdateExpression="SET failure_count = :zero",
              ConditionExpression="attribute_exists(pk)", ExpressionAttributeValues={":zero": av(0)})


# -- delivery records and the delivery queue -------------------------------------------------

def save_delivery(webhook_id: str, record: Delivery) -> None:
    item = {**record.public(), "pk": k.pk_deliveries(webhook_id), "sk": k.sk_delivery(record.at, record.id),
            "type": "delivery", "webhook_id": webhook_id, k.TTL: record.at + rules.DELIVERY_TTL}
    with unavailable_on_throttle():
        ddb().put_item(TableName=table(), Item=to_item(item))


def deliveries(webhook_id: str, now: int) -> list[Delivery]:
    """The last 100 attempts, newest first (pattern 28)."""
    with unavailable_on_throttle():
        out = ddb().query(TableName=table(), KeyConditionExpression="pk = :pk", ScanIndexForward=False,
                          Limit=rules.DELIVERIES_LISTED,
                          ExpressionAttributeValues={":pk": av(k.pk_deliveries(webhook_id))})
    items = [from_item(raw) or {} for raw in out.get("Items", [])]
    return [Delivery.from_item(i) for i in items if int(i.get(k.TTL, now + 1)) > now]


def queue(messages: list[Message]) -> None:
    """Send delivery messages, ten per SQS call; ``NotQueued`` if any was refused."""
    for start in range(0, len(messages), 10):
        chunk = messages[start:start + 10]
        entries = [{"Id": str(n), "MessageBody": msg.to_json()} for n, msg in enumerate(chunk)]
        out = client("sqs").send_message_batch(QueueUrl=settings().webhooks_queue_url, Entries=entries)
        if out.get("Failed"):
            raise NotQueued(f"{len(out['Failed'])} webhook deliveries could not be queued")
