"""Webhooks: their use cases and rules (docs/webhooks.md): the target check,
PATCH, secret rotation, the fan-out of outbox events, one delivery attempt and
the state it settles (consecutive failures, disabling). Storage is
``qrpro.data.webhooks``; signing and retry timing are ``qrpro.domain.webhooks``.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from qrpro.config import settings
from qrpro.data import delivery, replays
from qrpro.data import webhooks as repo
from qrpro.data.codes import scope_json
from qrpro.data.outbox import Event
from qrpro.data.table import Retry, or_not_found, retrying
from qrpro.domain import webhooks as rules
from qrpro.domain.errors import ValidationFailed
from qrpro.domain.scope import Caller

BACKOFF_ENV = "QRPRO_WEBHOOK_BACKOFF"  # tests only: a shortened schedule ("1,1,1"); never set in AWS


def backoff_schedule() -> tuple[int, ...]:
    """The retry delays: the API's, unless a test stack shortens them."""
    return rules.parse_schedule(os.environ.get(BACKOFF_ENV))


def _check_target(url: str) -> str:
    try:
        delivery.check_target(url, settings().allow_loopback_webhooks)
    except delivery.TargetRefused as err:
        raise ValidationFailed("url", str(err)) from err
    return url


def list_webhooks(scope: str) -> list[dict[str, Any]]:
    """Newest first."""
    hooks = sorted(repo.items_of(scope), key=lambda w: (w.created_at, w.id), reverse=True)
    return [w.public() for w in hooks]


def get(scope: str, webhook_id: str) -> dict[str, Any]:
    return or_not_found(repo.get_item(scope, webhook_id)).public()


def create(caller: Caller, url: str, events: list[str], description: str | None, now: int) -> dict[str, Any]:
    """A webhook; the answer is the only place its secret is ever shown."""
    _check_target(url)
    webhook_id, secret = str(uuid.uuid4()), rules.new_secret()
    webhook = repo.Webhook(scope=caller.scope, id=webhook_id, url=url, events=tuple(events),
                           secret_sealed=repo.seal_secret(caller.scope, webhook_id, secret),
                           description=description or "", created_at=now, updated_at=now, created_by=caller.user_id)
    repo.put_new(webhook)
    return {**webhook.public(), "secret": secret}


def update(scope: str, webhook_id: str, changes: dict[str, Any], now: int) -> dict[str, Any]:
    """PATCH: url (checked again), events, description, active. Re-enabling resets ``failure_count``."""
    if not changes:
        return get(scope, webhook_id)
    if "url" in changes:
        _check_target(changes["url"])
    fields: dict[str, Any] = {name: changes[name] for name in ("url", "events", "description", "active")
                              if name in changes}
    if "description" in fields:
        fields["description"] = fields["description"] or ""
    return repo.update(scope, webhook_id, fields, now, reset_failures=changes.get("active") is True).public()


def delete(scope: str, webhook_id: str) -> dict[str, Any]:
    """Removes the webhook; queued retries find it gone and stop. Its delivery records expire (TTL)."""
    repo.delete(scope, webhook_id)
    return {"id": webhook_id, "deleted": True}


def rotate_secret(scope: str, webhook_id: str, now: int) -> dict[str, Any]:
    """A new secret; the previous one keeps signing (second signature) for 24 h."""
    def attempt() -> dict[str, Any]:
        webhook = or_not_found(repo.get_item(scope, webhook_id))
        secret = rules.new_secret()
        # Two rotations at once: one wins, the other reads again.
        if not repo.rotate(webhook, repo.seal_secret(scope, webhook_id, secret), now + rules.ROTATION_OVERLAP, now):
            raise Retry()
        return {"secret": secret}

    return retrying(attempt, attempts=5, busy="the webhook kept changing; retry")


def deliveries(scope: str, webhook_id: str, now: int) -> list[dict[str, Any]]:
    or_not_found(repo.get_item(scope, webhook_id))
    return [d.public() for d in repo.deliveries(webhook_id, now)]


# -- fan-out: outbox event -> one queue message per subscribed webhook -----------------------

def event_payload(event: Event) -> dict[str, Any]:
    """The delivered payload of an outbox event."""
    return rules.payload(event.id, event.event_type, event.created_at, scope_json(event.scope), event.data)


def deliveries_of(outbox_event: Event) -> list[repo.Message]:
    """One delivery message per active webhook of the event's scope subscribed to its type."""
    event = event_payload(outbox_event)
    body = rules.body(event)
    return [repo.Message(webhook_id=w.id, scope=outbox_event.scope, event_id=event["id"],
                         event_type=event["type"], body=body)
            for w in repo.subscribers(outbox_event.scope, outbox_event.event_type)]


def fan_out(outbox_event: Event) -> int:
    """Queue the event's deliveries. Raises ``NotQueued`` if any message could not be queued (the
    stream batch is retried: at least once)."""
    messages = deliveries_of(outbox_event)
    repo.queue(messages)
    return len(messages)


def replay(outbox_event: Event, *, apply: bool, now: int) -> list[tuple[str, str]]:
    """The fan-out again, for an event whose fan-out was given up on (``qrpro admin
    replay-failed-events``): (webhook id, ``queued`` | ``would_queue`` | ``already_replayed``) for
    each webhook subscribed to it now. A delivery an earlier replay queued is not queued again (the
    replay ledger); each is recorded after it is queued, so a replay cut short queues nothing twice
    but the one it was at (which receivers deduplicate on ``webhook-id``)."""
    done = replays.replayed_webhooks(outbox_event.id)
    out = []
    for msg in deliveries_of(outbox_event):
        if msg.webhook_id in done:
            out.append((msg.webhook_id, "already_replayed"))
        elif not apply:
            out.append((msg.webhook_id, "would_queue"))
        else:
            repo.queue([msg])
            replays.record(outbox_event.id, msg.webhook_id, now)
            out.append((msg.webhook_id, "queued"))
    return out


# -- one attempt ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    record: repo.Delivery | None  # None: nothing was sent (webhook gone, disabled, unsubscribed)
    retry_in: int | None  # seconds until the next attempt, None when done


def attempt(webhook: repo.Webhook, event_id: str, event_type: str, body: str, number: int, *,
            schedule: Sequence[int], now: Callable[[], float] = time.time,
            rand: Callable[[float, float], float] = random.uniform, count: bool = True) -> Outcome:
    """Sign and send once; record the attempt; settle the webhook's state: a
    success clears the failures, a gone target (410) disables it, and the 20th
    failed event in a row disables it.

    ``count=False`` (the test ping) leaves ``failure_count`` and ``active`` alone.
    """
    at = int(now())
    headers = rules.headers(event_id, at, body, repo.signing_secrets(webhook, at))
    result = delivery.post(webhook.url, body.encode("utf-8"), headers,
                           allow_loopback=settings().allow_loopback_webhooks)
    retry_in = None
    if count and not result.ok and not rules.gone(result.status_code):
        retry_in = rules.retry_delay(number, schedule, rand)
    record = repo.Delivery(id=str(uuid.uuid4()), event_id=event_id, event_type=event_type, attempt=number,
                           status_code=result.status_code, error=result.error, duration_ms=result.duration_ms,
                           at=at, next_retry_at=None if retry_in is None else at + retry_in)
    repo.save_delivery(webhook.id, record)
    if count:
        if result.ok:
            if webhook.failure_count:  # the common case costs no write
                repo.reset_failures(webhook)
        elif rules.gone(result.status_code):
            repo.disable(webhook, at)
        elif retry_in is None:
            failures = repo.count_failure(webhook)
            if failures is not None and failures >= rules.MAX_CONSECUTIVE_FAILURES:
                repo.disable(webhook, at)
    return Outcome(record, retry_in)


def deliver(msg: repo.Message, number: int, schedule: Sequence[int] | None = None) -> Outcome:
    """Attempt ``number`` (1-based) of a queued delivery. Nothing is sent when the
    webhook was deleted, disabled or unsubscribed from the type meanwhile."""
    webhook = repo.get_item(msg.scope, msg.webhook_id)
    if webhook is None or not webhook.active or msg.event_type not in webhook.events:
        return Outcome(None, None)
    return attempt(webhook, msg.event_id, msg.event_type, msg.body, number,
                   schedule=backoff_schedule() if schedule is None else schedule)


def ping(scope: str, webhook_id: str, now: int) -> dict[str, Any]:
    """POST /api/webhooks/{id}/test: one signed ``ping`` now; the delivery record."""
    webhook = or_not_found(repo.get_item(scope, webhook_id))
    event = rules.payload(str(uuid.uuid4()), rules.PING, now, scope_json(scope), {"webhook_id": webhook_id})
    out = attempt(webhook, event["id"], rules.PING, rules.body(event), 1, schedule=(), count=False)
    assert out.record is not None
    return out.record.public()
