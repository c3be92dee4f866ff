"""The outbox: an ``EVENT#{id}`` / ``EVENT`` item written in the transaction of
the change it reports (a code created, updated, deleted ...; a plan's monthly
scan cap reached). The table's stream hands each new one to the webhook
fan-out (``lambdas/events``); the item expires after a week (TTL)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from qrpro.data import keys as k
from qrpro.data.table import table, to_item

EVENT_SK = "EVENT"
EVENT_TTL = 7 * 86_400


@dataclass(frozen=True)
class Event:
    """One outbox event: ``data`` is what its webhook payload carries."""

    event_type: str
    scope: str
    created_at: int
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Event | None:
        """The event of a stream's new image, or None if the item is not one."""
        if not str(item.get("pk", "")).startswith(k.pk_event("")) or item.get("sk") != EVENT_SK:
            return None
        return cls(id=str(item["id"]), event_type=str(item["event_type"]), scope=str(item["scope"]),
                   created_at=int(item["created_at"]), data=item.get("data") or {})

    def put(self) -> dict[str, Any]:
        """The transaction item that writes it."""
        return {"Put": {"TableName": table(), "Item": to_item({
            "pk": k.pk_event(self.id), "sk": EVENT_SK, "type": "event", "id": self.id,
            "event_type": self.event_type, "scope": self.scope, "created_at": self.created_at, "data": self.data,
            k.TTL: self.created_at + EVENT_TTL})}}
