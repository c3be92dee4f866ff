"""The replay ledger: each (outbox event, webhook) delivery that `qrpro admin
replay-failed-events` queued, so that a second replay does not queue it again.

Items: ``REPLAY#{event_id}`` / ``WEBHOOK#{webhook_id}`` with the time it was
queued. They outlive the failed-events objects they come from (90 days, the
bucket's lifecycle) and then expire (TTL).
"""

from __future__ import annotations

from qrpro.data import keys as k
from qrpro.data.aws import ddb
from qrpro.data.table import av, query_items, table, to_item, unavailable_on_throttle

LEDGER_TTL = 100 * 86_400


def replayed_webhooks(event_id: str) -> set[str]:
    """The webhooks an earlier replay queued ``event_id`` for."""
    items = query_items({"TableName": table(), "KeyConditionExpression": "pk = :pk", "ConsistentRead": True,
                         "ExpressionAttributeValues": {":pk": av(k.pk_replay(event_id))}})
    return {str(item["webhook_id"]) for item in items}


def record(event_id: str, webhook_id: str, now: int) -> None:
    item = {"pk": k.pk_replay(event_id), "sk": k.sk_webhook(webhook_id), "type": "replay", "event_id": event_id,
            "webhook_id": webhook_id, "replayed_at": now, k.TTL: now + LEDGER_TTL}
    with unavailable_on_throttle():
        ddb().put_item(TableName=table(), Item=to_item(item))
